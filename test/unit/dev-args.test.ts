import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keycloakArgs, keycloakDbUrl, keycloakMarkers } from '../../src/dev/keycloak.js';
import { CONTROLLERS, apiserverArgs, controllerManagerArgs, kubeLdflags, kubeSourceHash } from '../../src/dev/kube.js';
import { stackPaths } from '../../src/dev/paths.js';
import { DEFAULT_PORTS, parsePortOverrides } from '../../src/dev/ports.js';
import { pingOutcome, pingRequest, redisArgs, redisConfig, redisMarkers } from '../../src/dev/redis.js';

const paths = stackPaths({ SYSTEMPROMPT_STACK_DIR: '/s', SYSTEMPROMPT_CACHE_DIR: '/c' });

describe('keycloak command line', () => {
  it('keeps its database in the stack folder and binds loopback on the chosen ports', () => {
    const args = keycloakArgs({ paths, ports: parsePortOverrides('keycloak=28080,keycloak-management=29000') });
    expect(args[0]).toBe('start-dev');
    expect(args).toContain('--http-port=28080');
    expect(args).toContain('--http-management-port=29000');
    expect(args).toContain('--http-host=127.0.0.1');
    expect(args).toContain('--hostname=http://localhost:28080');
    expect(args).toContain('--health-enabled=true');
    // caches large enough for a shared realm of many organizations
    expect(args).toContain('--cache-embedded-realms-max-count=200000');
    expect(args).toContain('--cache-embedded-users-max-count=200000');
    expect(args).toContain(`--db-url=${keycloakDbUrl('/s/keycloak/h2')}`);
    expect(keycloakDbUrl('/s/keycloak/h2')).toBe('jdbc:h2:file:/s/keycloak/h2/keycloakdb;NON_KEYWORDS=VALUE');
    expect(args.some((a) => a.includes('/c/'))).toBe(false);
    // the marker that recognises the process is on its command line
    expect(args.join(' ')).toContain(keycloakMarkers({ paths })[0]);
  });
});

describe('redis-server command line', () => {
  it('loopback, protected mode, its own port, no persistence, its folder in the stack, recognisable by its config file', () => {
    const args = redisArgs({ paths, ports: parsePortOverrides('redis=26379') });
    expect(args[0]).toBe('/s/redis/redis.conf');
    const opt = (name: string) => args[args.indexOf(name) + 1];
    expect(opt('--port')).toBe('26379');
    expect(opt('--bind')).toBe('127.0.0.1');
    expect(opt('--protected-mode')).toBe('yes');
    expect(opt('--save')).toBe('');
    expect(opt('--appendonly')).toBe('no');
    expect(opt('--dir')).toBe('/s/redis');
    expect(opt('--daemonize')).toBe('no');
    // The process title stays its command line, which holds the marker.
    expect(opt('--set-proc-title')).toBe('no');
    expect(args.join(' ')).toContain(redisMarkers({ paths })[0]);
    expect(args.some((a) => a.startsWith('/var') || a.includes('/c/'))).toBe(false);
    expect(redisArgs({ paths, ports: DEFAULT_PORTS })[2]).toBe('16379');
  });

  it('keeps the password in the config file only, quoted', () => {
    expect(redisConfig('abc-DEF_123')).toMatch(/^requirepass "abc-DEF_123"$/m);
    expect(redisConfig('a"b\\c')).toContain('requirepass "a\\"b\\\\c"');
    expect(redisArgs({ paths, ports: DEFAULT_PORTS }).join(' ')).not.toContain('requirepass');
  });

  it('checks readiness with AUTH then PING, and tells a refusal from a partial answer', () => {
    expect(pingRequest('pw')).toBe('*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$2\r\npw\r\n*1\r\n$4\r\nPING\r\n');
    expect(pingOutcome('')).toBeUndefined();
    expect(pingOutcome('+OK\r\n+PO')).toBeUndefined();
    expect(pingOutcome('+OK\r\n+PONG\r\n')).toBe('pong');
    expect(pingOutcome('-WRONGPASS invalid username-password pair or user is disabled.\r\n')).toBe('refused');
    expect(pingOutcome('-ERR AUTH <password> called without any password configured for the default user.\r\n-NOAUTH x\r\n')).toBe('refused');
    expect(pingOutcome('+OK\r\n-LOADING Redis is loading the dataset in memory\r\n')).toBe('refused');
  });
});

describe('control plane command lines', () => {
  it('apiserver: RBAC, service-account keys, client CA, loopback', () => {
    const args = apiserverArgs({ paths, ports: DEFAULT_PORTS });
    expect(args).toEqual(
      expect.arrayContaining([
        '--etcd-servers=http://127.0.0.1:12379',
        '--secure-port=16443',
        '--bind-address=127.0.0.1',
        '--authorization-mode=RBAC',
        '--service-account-key-file=/s/kube/pki/sa.pub',
        '--service-account-signing-key-file=/s/kube/pki/sa.key',
        '--client-ca-file=/s/kube/pki/ca.crt',
      ]),
    );
  });
  it('controller-manager: the 1.34 controller names, no leader election, no serving port', () => {
    const args = controllerManagerArgs({ paths });
    expect(args).toContain(`--controllers=${CONTROLLERS.join(',')}`);
    expect(CONTROLLERS.every((c) => c.endsWith('-controller'))).toBe(true);
    expect(CONTROLLERS).toEqual(expect.arrayContaining(['namespace-controller', 'garbage-collector-controller', 'resourcequota-controller']));
    expect(args).toEqual(expect.arrayContaining(['--leader-elect=false', '--secure-port=0', '--kubeconfig=/s/kube/pki/controller-manager.kubeconfig']));
  });
  it('stamps the Kubernetes version into the binary', () => {
    expect(kubeLdflags('v1.34.4')).toContain('-X k8s.io/component-base/version.gitVersion=v1.34.4');
    expect(kubeLdflags('v1.34.4')).toContain('-X k8s.io/client-go/pkg/version.gitMinor=34');
  });
});

describe('kubeSourceHash', () => {
  it('changes with a source file, go.sum, the Go version or the flags, and ignores other files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-kube-src-'));
    writeFileSync(join(dir, 'go.mod'), 'module x\n');
    writeFileSync(join(dir, 'go.sum'), '');
    writeFileSync(join(dir, 'main.go'), 'package main\n');
    const base = await kubeSourceHash(dir, 'go1.26.8', '-s');
    expect(await kubeSourceHash(dir, 'go1.26.8', '-s')).toBe(base);
    writeFileSync(join(dir, 'README.md'), 'docs');
    expect(await kubeSourceHash(dir, 'go1.26.8', '-s')).toBe(base);
    expect(await kubeSourceHash(dir, 'go1.26.9', '-s')).not.toBe(base);
    expect(await kubeSourceHash(dir, 'go1.26.8', '-s -w')).not.toBe(base);
    writeFileSync(join(dir, 'go.sum'), 'x v1 h1:abc\n');
    const withSum = await kubeSourceHash(dir, 'go1.26.8', '-s');
    expect(withSum).not.toBe(base);
    writeFileSync(join(dir, 'main.go'), 'package main // changed\n');
    expect(await kubeSourceHash(dir, 'go1.26.8', '-s')).not.toBe(withSum);
  });
});
