import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

/** A signing key of a fake realm: the private half signs test tokens, the JWK goes in its JWKS. */
export interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

/** A fresh ES256 key pair under `kid`. */
export async function makeKey(kid: string): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}
