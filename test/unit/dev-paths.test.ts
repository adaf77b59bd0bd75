import { describe, expect, it } from 'vitest';
import { cacheDirFrom, stackDirFrom, stackPaths } from '../../src/dev/paths.js';

describe('stack and cache folders', () => {
  it('default under the home folder', () => {
    expect(stackDirFrom({}, '/home/u', '/cwd')).toBe('/home/u/.local/state/systemprompt/stack');
    expect(cacheDirFrom({}, '/home/u', '/cwd')).toBe('/home/u/.cache/systemprompt');
  });
  it('follow XDG and the SYSTEMPROMPT_* overrides, relative to the working folder', () => {
    expect(stackDirFrom({ XDG_STATE_HOME: '/x' }, '/home/u')).toBe('/x/systemprompt/stack');
    expect(stackDirFrom({ SYSTEMPROMPT_STACK_DIR: 'rel/stack', XDG_STATE_HOME: '/x' }, '/home/u', '/cwd')).toBe('/cwd/rel/stack');
    expect(cacheDirFrom({ SYSTEMPROMPT_CACHE_DIR: '/c' }, '/home/u')).toBe('/c');
  });
  it('keep secrets apart from the state file and data outside the shared cache', () => {
    const p = stackPaths({ SYSTEMPROMPT_STACK_DIR: '/s', SYSTEMPROMPT_CACHE_DIR: '/c' });
    expect(p.stateFile).toBe('/s/stack.json');
    expect(p.postgres.passwordFile).toBe('/s/secrets/postgres-admin-password');
    expect(p.postgres.superuserPasswordFile).toBe('/s/secrets/postgres-superuser-password');
    // The second PostgreSQL server: its own cluster and its own passwords.
    expect(p.postgres2.dataDir).toBe('/s/postgres-2/data');
    expect(p.postgres2.passwordFile).toBe('/s/secrets/postgres-2-admin-password');
    expect(p.postgres2.superuserPasswordFile).toBe('/s/secrets/postgres-2-superuser-password');
    expect(p.keycloak.passwordFile).toBe('/s/secrets/keycloak-admin-password');
    expect(p.keycloak.dbDir.startsWith('/s/')).toBe(true);
    expect(p.kube.kubeconfig).toBe('/s/kube/pki/admin.kubeconfig');
    // Redis: its password in secrets/, its config file (which holds it too) and working folder in the stack.
    expect(p.redis).toEqual({ dir: '/s/redis', configFile: '/s/redis/redis.conf', passwordFile: '/s/secrets/redis-password' });
  });
});
