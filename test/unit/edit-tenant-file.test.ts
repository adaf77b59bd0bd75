import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { addScope, addUser, newTenantFile, removeScope, removeUser, setEnabled } from '../../src/edit/tenant-file.js';

const u = (email: string, scopes: string[] = [], enabled = true) => ({ email, scopes, enabled });

/** The one contiguous region where two texts differ: [common prefix length, common suffix length]. */
function changed(a: string, b: string): { before: string; after: string } {
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  let s = 0;
  while (s < a.length - p && s < b.length - p && a[a.length - 1 - s] === b[b.length - 1 - s]) s++;
  return { before: a.slice(p, a.length - s), after: b.slice(p, b.length - s) };
}

const commented = `# yaml-language-server: $schema=../schemas/tenant.schema.json
# A tenant with comments everywhere.
name: acme        # the tenant id
display_name: "Acme, Inc."
quotas: {cpu: "2", memory: 4Gi}

users:
  # the owner
  - email: Owner@Acme.example   # founder
    scopes: [user, read]   # grows later

  - email: 'bob@acme.example'
    scopes:
      - read
      # write comes later
      - user
    enabled: false
# trailing comment
`;

describe('addUser', () => {
  it('appends to a block list in the style of the existing entries, byte-identical elsewhere', () => {
    const out = addUser(commented, u('new@acme.example', ['read', 'write']));
    expect(out).toBe(commented.replace('# trailing comment', `  - email: new@acme.example
    scopes: [read, write]
# trailing comment`));
    expect(parse(out).users[2]).toEqual({ email: 'new@acme.example', scopes: ['read', 'write'] });
  });

  it('copies quoting and block-list scopes from the first entries', () => {
    const text = "name: a\nusers:\n  - email: 'a@b.example'\n    scopes:\n        - read\n";
    expect(addUser(text, u('c@d.example', ['read', 'write']))).toBe(`${text}  - email: 'c@d.example'\n    scopes:\n        - read\n        - write\n`);
  });

  it('turns `users: []` into a block list, keeping a trailing comment on the key line', () => {
    const text = 'name: default\ndisplay_name: Default\nusers: []   # none yet\nagents: [assistant]\n';
    expect(addUser(text, u('user@example.com', ['read', 'write']))).toBe(
      'name: default\ndisplay_name: Default\nusers:   # none yet\n  - email: user@example.com\n    scopes: [read, write]\nagents: [assistant]\n',
    );
  });

  it('adds a missing users key at the end, with the indentation the file uses', () => {
    const text = 'name: a\nquotas:\n    cpu: "1"\n# end\n';
    expect(addUser(text, u('x@y.example', ['read'], false))).toBe('name: a\nquotas:\n    cpu: "1"\nusers:\n    - email: x@y.example\n      scopes: [read]\n      enabled: false\n# end\n');
  });

  it('handles a file without a final newline, and `users:` with no value', () => {
    expect(addUser('name: a', u('x@y.example'))).toBe('name: a\nusers:\n  - email: x@y.example\n');
    expect(addUser('name: a\nusers:\n', u('x@y.example'))).toBe('name: a\nusers:\n  - email: x@y.example\n');
    expect(addUser('name: a\nusers: ~ # later\n', u('x@y.example'))).toBe('name: a\nusers: # later\n  - email: x@y.example\n');
  });

  it('keeps indentless lists indentless', () => {
    const text = 'name: a\nusers:\n- email: a@b.example\n  scopes: [read]\n';
    expect(addUser(text, u('c@d.example', ['user']))).toBe(`${text}- email: c@d.example\n  scopes: [user]\n`);
  });

  it('appends to flow lists, single-line and multi-line', () => {
    expect(addUser('name: a\nusers: [{email: a@b.example}]  # c\n', u('c@d.example', ['read']))).toBe(
      'name: a\nusers: [{email: a@b.example}, {email: c@d.example, scopes: [read]}]  # c\n',
    );
    expect(addUser('name: a\nusers: [\n  {email: a@b.example}\n]\n', u('c@d.example'))).toBe('name: a\nusers: [\n  {email: a@b.example},\n  {email: c@d.example}\n]\n');
  });

  it('keeps CRLF line endings', () => {
    expect(addUser('name: a\r\nusers:\r\n  - email: a@b.example\r\n', u('c@d.example', ['read']))).toBe(
      'name: a\r\nusers:\r\n  - email: a@b.example\r\n  - email: c@d.example\r\n    scopes: [read]\r\n',
    );
  });

  it('quotes what would not read back as the same string', () => {
    const out = addUser('name: a\nusers: []\n', u("o'neil+{x}@b.example", ['read']));
    expect(parse(out).users[0].email).toBe("o'neil+{x}@b.example");
  });
});

describe('removeUser', () => {
  it('removes only the lines of the entry', () => {
    const out = removeUser(commented, 0, 'owner@acme.example');
    expect(changed(commented, out)).toEqual({ before: '  - email: Owner@Acme.example   # founder\n    scopes: [user, read]   # grows later\n', after: '' });
  });

  it('leaves `users: []` when the last user goes', () => {
    expect(removeUser('name: a\nusers:\n  - email: a@b.example\n    scopes: [read]\nagents: []\n', 0, 'a@b.example')).toBe('name: a\nusers: []\nagents: []\n');
    expect(removeUser('name: a\nusers: [{email: a@b.example}, {email: c@d.example}]\n', 1, 'c@d.example')).toBe('name: a\nusers: [{email: a@b.example}]\n');
    expect(removeUser('name: a\nusers: [{email: a@b.example}, {email: c@d.example}]\n', 0, 'a@b.example')).toBe('name: a\nusers: [{email: c@d.example}]\n');
  });

  it('refuses when the entry is not the expected user', () => {
    expect(() => removeUser(commented, 1, 'owner@acme.example')).toThrow(/users\[1\] is not owner@acme.example/);
  });
});

describe('scopes and enabled', () => {
  it('adds to a flow list, keeping the trailing comment', () => {
    const out = addScope(commented, 0, 'owner@acme.example', 'admin');
    expect(changed(commented, out)).toEqual({ before: '', after: ', admin' });
    expect(out).toContain('scopes: [user, read, admin]   # grows later');
  });

  it('adds to a block list as a new line', () => {
    const out = addScope(commented, 1, 'bob@acme.example', 'write');
    expect(out).toBe(commented.replace('      - user\n', '      - user\n      - write\n'));
  });

  it('adding a held scope or removing an absent one changes nothing', () => {
    expect(addScope(commented, 0, 'owner@acme.example', 'read')).toBe(commented);
    expect(removeScope(commented, 0, 'owner@acme.example', 'admin')).toBe(commented);
  });

  it('removes from flow and block lists; the last one leaves []', () => {
    expect(removeScope(commented, 0, 'owner@acme.example', 'user')).toBe(commented.replace('[user, read]', '[read]'));
    expect(removeScope(commented, 1, 'bob@acme.example', 'read')).toBe(commented.replace('      - read\n', ''));
    const once = removeScope('name: a\nusers:\n  - email: a@b.example\n    scopes:\n      - read\n', 0, 'a@b.example', 'read');
    expect(once).toBe('name: a\nusers:\n  - email: a@b.example\n    scopes: []\n');
    expect(removeScope('name: a\nusers: [{email: a@b.example, scopes: [read]}]\n', 0, 'a@b.example', 'read')).toBe('name: a\nusers: [{email: a@b.example, scopes: []}]\n');
  });

  it('adds a missing scopes key to block and flow entries', () => {
    expect(addScope('name: a\nusers:\n  - email: a@b.example\n', 0, 'a@b.example', 'read')).toBe('name: a\nusers:\n  - email: a@b.example\n    scopes: [read]\n');
    expect(addScope('name: a\nusers: [{email: a@b.example}]\n', 0, 'a@b.example', 'read')).toBe('name: a\nusers: [{email: a@b.example, scopes: [read]}]\n');
    expect(addScope('name: a\nusers:\n  - email: a@b.example\n    scopes:\n', 0, 'a@b.example', 'read')).toBe('name: a\nusers:\n  - email: a@b.example\n    scopes: [read]\n');
  });

  it('sets enabled in place or adds it', () => {
    expect(setEnabled(commented, 1, 'bob@acme.example', true)).toBe(commented.replace('enabled: false', 'enabled: true'));
    expect(setEnabled(commented, 0, 'owner@acme.example', true)).toBe(commented);
    expect(setEnabled(commented, 0, 'owner@acme.example', false)).toBe(commented.replace('# grows later\n', '# grows later\n    enabled: false\n'));
  });
});

describe('newTenantFile', () => {
  it('writes a minimal tenant that parses back', () => {
    const text = newTenantFile({ name: 'customer-a', displayName: 'Customer A', modeline: '# yaml-language-server: $schema=../schemas/tenant.schema.json' });
    expect(text).toBe('# yaml-language-server: $schema=../schemas/tenant.schema.json\nname: customer-a\ndisplay_name: Customer A\nusers: []\n');
    expect(parse(newTenantFile({ name: '123' })).name).toBe('123');
  });
});

describe('round trips', () => {
  const files = [
    commented,
    'name: a\nusers:\n- {email: a@b.example, scopes: [read]}\n',
    'name: a\nusers:\n  -\n    email: a@b.example\n    scopes:\n    - read\n',
    'name: a\nusers: [\n  {email: a@b.example, scopes: [read]},\n]\n',
    'name: a\r\nusers:\r\n  - email: a@b.example # c\r\n    scopes: [read]\r\n',
  ];

  it('adding then removing a user gives back the original bytes', () => {
    for (const text of files) {
      const n = parse(text).users.length;
      const added = addUser(text, u('zed@z.example', ['read', 'admin'], false));
      expect(parse(added).users[n]).toEqual({ email: 'zed@z.example', scopes: ['read', 'admin'], enabled: false });
      expect(removeUser(added, n, 'zed@z.example'), JSON.stringify(text)).toBe(text);
    }
  });

  it('adding then removing a scope gives back the original bytes', () => {
    for (const text of files) {
      const email = parse(text).users[0].email;
      const added = addScope(text, 0, email, 'admin');
      expect(parse(added).users[0].scopes).toContain('admin');
      expect(removeScope(added, 0, email, 'admin'), JSON.stringify(text)).toBe(text);
    }
  });

  it('new entries follow flow-mapping items and next-line items', () => {
    expect(addUser(files[1]!, u('c@d.example'))).toBe(`${files[1]}- {email: c@d.example}\n`);
    expect(addUser(files[2]!, u('c@d.example', ['read']))).toBe(`${files[2]}  - email: c@d.example\n    scopes:\n    - read\n`);
  });
});
