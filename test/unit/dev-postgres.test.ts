import { describe, expect, it } from 'vitest';
import {
  ADMIN_FACTS_SQL,
  ADMIN_ROLE_ATTRIBUTES,
  POSTGRES_ADMIN_USER,
  POSTGRES_BOOTSTRAP_USER,
  adminRoleSql,
  adminRoleVerdict,
  oldClusterError,
  type AdminRoleRow,
} from '../../src/dev/postgres.js';
import { scramVerifier } from '../../src/targets/passwords.js';

const right: AdminRoleRow = {
  rolsuper: false,
  rolcanlogin: true,
  rolcreaterole: true,
  rolcreatedb: true,
  rolreplication: false,
  rolbypassrls: false,
  rolinherit: true,
};

describe('the admin login and the bootstrap superuser', () => {
  it('are two roles', () => {
    expect(POSTGRES_ADMIN_USER).toBe('systemprompt');
    expect(POSTGRES_BOOTSTRAP_USER).not.toBe(POSTGRES_ADMIN_USER);
  });
});

describe('adminRoleVerdict', () => {
  const facts = (admin: AdminRoleRow | undefined, adminLoginWorks = true, bootstrapUser = POSTGRES_BOOTSTRAP_USER) => ({ bootstrapUser, admin, adminLoginWorks });

  it('leaves a non-superuser admin that logs in alone', () => {
    expect(adminRoleVerdict(facts(right))).toBe('ok');
  });
  it('creates a missing admin role', () => {
    expect(adminRoleVerdict(facts(undefined, false))).toBe('create');
  });
  it('repairs an admin that is a superuser or lacks what the product needs', () => {
    expect(adminRoleVerdict(facts({ ...right, rolsuper: true }))).toBe('alter');
    expect(adminRoleVerdict(facts({ ...right, rolcreaterole: false }))).toBe('alter');
    expect(adminRoleVerdict(facts({ ...right, rolcreatedb: false }))).toBe('alter');
    expect(adminRoleVerdict(facts({ ...right, rolcanlogin: false }, false))).toBe('alter');
    expect(adminRoleVerdict(facts({ ...right, rolreplication: true }))).toBe('alter');
    expect(adminRoleVerdict(facts({ ...right, rolbypassrls: true }))).toBe('alter');
    expect(adminRoleVerdict(facts({ ...right, rolinherit: false }))).toBe('alter');
  });
  it('resets the password of an admin whose recorded password no longer logs in', () => {
    expect(adminRoleVerdict(facts(right, false))).toBe('alter');
  });
  it('refuses a cluster whose bootstrap superuser is the admin login (made by an older version)', () => {
    expect(adminRoleVerdict(facts({ ...right, rolsuper: true }, true, POSTGRES_ADMIN_USER))).toBe('bootstrap-is-admin');
    expect(adminRoleVerdict(facts(right, true, POSTGRES_ADMIN_USER))).toBe('bootstrap-is-admin');
  });
});

describe('adminRoleSql', () => {
  const verifier = scramVerifier('s3cret-Admin_pw', Buffer.alloc(16, 7));

  it('creates or alters the role as a non-superuser that may create roles and databases', () => {
    expect(adminRoleSql('create', verifier)).toBe(`CREATE ROLE "systemprompt" LOGIN CREATEROLE CREATEDB NOSUPERUSER NOREPLICATION NOBYPASSRLS INHERIT PASSWORD '${verifier}'`);
    expect(adminRoleSql('alter', verifier)).toBe(`ALTER ROLE "systemprompt" ${ADMIN_ROLE_ATTRIBUTES} PASSWORD '${verifier}'`);
    expect(ADMIN_ROLE_ATTRIBUTES).toMatch(/\bNOSUPERUSER\b/);
    expect(ADMIN_ROLE_ATTRIBUTES).not.toMatch(/(^| )SUPERUSER\b/);
  });
  it('never carries the password itself, only its SCRAM verifier', () => {
    const sql = adminRoleSql('create', verifier);
    expect(sql).not.toContain('s3cret-Admin_pw');
    expect(sql).toMatch(/PASSWORD 'SCRAM-SHA-256\$4096:/);
  });
  it('refuses anything that is not a verifier (a clear password, a quote)', () => {
    expect(() => adminRoleSql('create', 's3cret-Admin_pw')).toThrow(/verifier/);
    expect(() => adminRoleSql('alter', `${verifier}'; DROP ROLE x; --`)).toThrow(/verifier/);
  });
});

describe('the facts query', () => {
  it('reads pg_roles only (any login may), never pg_authid', () => {
    expect(ADMIN_FACTS_SQL).toContain('pg_roles');
    expect(ADMIN_FACTS_SQL).not.toContain('pg_authid');
    expect(ADMIN_FACTS_SQL).toMatch(/oid = 10\b/); // BOOTSTRAP_SUPERUSERID
  });
});

describe('oldClusterError', () => {
  it('says what happened and to start over with dev down --purge, then dev up', () => {
    const e = oldClusterError('/s/postgres/data');
    expect(e.message).toContain('/s/postgres/data');
    expect(e.message).toContain('bootstrap superuser');
    expect(e.hint).toContain('`systemprompt dev down --purge`, then `systemprompt dev up`');
  });
});
