/**
 * The part of the `ssh2` package (a devDependency, which ships no types) that the git SSH server
 * of the ConfigSource credentials test uses: a server, public key authentication, exec.
 */
declare module 'ssh2' {
  import type { EventEmitter } from 'node:events';
  import type { AddressInfo } from 'node:net';
  import type { Duplex, Writable } from 'node:stream';

  export interface ParsedKey {
    type: string;
    getPublicSSH(): Buffer;
    verify(data: Buffer, signature: Buffer, hashAlgo?: string): boolean | Error;
  }

  export interface AuthContext {
    method: string;
    username: string;
    key?: { algo: string; data: Buffer };
    signature?: Buffer;
    blob?: Buffer;
    hashAlgo?: string;
    accept(): void;
    reject(methods?: string[], isPartial?: boolean): void;
  }

  export interface ServerChannel extends Duplex {
    stderr: Writable;
    exit(code: number): void;
  }

  export interface Session extends EventEmitter {
    on(event: 'env', listener: (accept: (() => void) | undefined, reject: (() => void) | undefined, info: { key: string; val: string }) => void): this;
    on(event: 'exec', listener: (accept: () => ServerChannel, reject: () => void, info: { command: string }) => void): this;
    on(event: string, listener: (...args: never[]) => void): this;
  }

  export interface Connection extends EventEmitter {
    on(event: 'authentication', listener: (ctx: AuthContext) => void): this;
    on(event: 'ready', listener: () => void): this;
    on(event: 'session', listener: (accept: () => Session, reject: () => void) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
    on(event: string, listener: (...args: never[]) => void): this;
    end(): void;
  }

  export class Server extends EventEmitter {
    constructor(config: { hostKeys: Array<Buffer | string> }, listener?: (client: Connection) => void);
    listen(port: number, host: string, callback?: () => void): this;
    address(): AddressInfo;
    close(callback?: (err?: Error) => void): this;
  }

  export const utils: {
    parseKey(data: Buffer | string, passphrase?: string): ParsedKey | ParsedKey[] | Error;
  };

  const ssh2: { Server: typeof Server; utils: typeof utils };
  export default ssh2;
}
