import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scramVerifier } from '../../src/targets/passwords.js';

/**
 * RFC 7677, section 3: a SCRAM-SHA-256 exchange for user "user", password "pencil".
 *   C: n,,n=user,r=rOprNGfwEbeRWgbNEkqO
 *   S: r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096
 *   C: c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=
 *   S: v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=
 */
const RFC7677 = {
  password: 'pencil',
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  iterations: 4096,
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

/** AuthMessage = client-first-message-bare "," server-first-message "," client-final-message-without-proof (RFC 5802 §3). */
function authMessage(): string {
  const clientFirstBare = RFC7677.clientFirst.replace(/^n,,/, '');
  const clientFinalWithoutProof = RFC7677.clientFinal.replace(/,p=[^,]*$/, '');
  return `${clientFirstBare},${RFC7677.serverFirst},${clientFinalWithoutProof}`;
}

function verifierParts(v: string): { iterations: number; salt: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const m = /^SCRAM-SHA-256\$([0-9]+):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/.exec(v);
  if (!m) throw new Error(`not a SCRAM-SHA-256 verifier: ${v}`);
  return { iterations: Number(m[1]), salt: Buffer.from(m[2]!, 'base64'), storedKey: Buffer.from(m[3]!, 'base64'), serverKey: Buffer.from(m[4]!, 'base64') };
}

describe('scramVerifier against RFC 7677', () => {
  const verifier = scramVerifier(RFC7677.password, Buffer.from(RFC7677.salt, 'base64'), RFC7677.iterations);
  const { iterations, salt, storedKey, serverKey } = verifierParts(verifier);

  it('is written the way PostgreSQL stores it', () => {
    expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
    expect(iterations).toBe(4096);
    expect(salt.toString('base64')).toBe(RFC7677.salt);
    expect(storedKey).toHaveLength(32);
    expect(serverKey).toHaveLength(32);
    expect(verifier).toBe(`SCRAM-SHA-256$4096:${RFC7677.salt}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`);
  });

  it('checks the exchange: the RFC messages hang together', () => {
    expect(authMessage()).toBe(
      'n=user,r=rOprNGfwEbeRWgbNEkqO,' +
        'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,' +
        'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    );
    expect(Buffer.from('biws', 'base64').toString()).toBe('n,,');
    expect(RFC7677.serverFirst).toContain(`s=${RFC7677.salt},i=${RFC7677.iterations}`);
  });

  it("reproduces the RFC's ServerSignature from our ServerKey", () => {
    const serverSignature = createHmac('sha256', serverKey).update(authMessage()).digest('base64');
    expect(`v=${serverSignature}`).toBe(RFC7677.serverFinal);
  });

  it("accepts the RFC's ClientProof with our StoredKey", () => {
    const proof = Buffer.from(/,p=([^,]*)$/.exec(RFC7677.clientFinal)![1]!, 'base64');
    expect(proof).toHaveLength(32);
    const clientSignature = createHmac('sha256', storedKey).update(authMessage()).digest();
    const clientKey = Buffer.from(proof.map((b, i) => b ^ clientSignature[i]!));
    expect(createHash('sha256').update(clientKey).digest().toString('base64')).toBe(storedKey.toString('base64'));
  });

  it('rejects a wrong password', () => {
    const other = verifierParts(scramVerifier('pencil2', Buffer.from(RFC7677.salt, 'base64'), iterations));
    expect(createHmac('sha256', other.serverKey).update(authMessage()).digest('base64')).not.toBe(RFC7677.serverFinal.slice(2));
    expect(other.storedKey.equals(storedKey)).toBe(false);
  });

  it('makes a fresh 16-byte salt and 4096 iterations by default', () => {
    const a = verifierParts(scramVerifier('pencil'));
    const b = verifierParts(scramVerifier('pencil'));
    expect(a.iterations).toBe(4096);
    expect(a.salt).toHaveLength(16);
    expect(a.salt.equals(b.salt)).toBe(false);
    expect(a.storedKey.equals(b.storedKey)).toBe(false);
  });
});
