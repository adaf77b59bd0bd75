import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { AbortedError, ConflictError, FencedError, SystemPromptError, UsageError } from '../errors.js';
import { kubeError } from '../targets/kube-errors.js';
import type { KubeHttp } from '../targets/kube-http.js';
import { isTransient } from '../targets/retry.js';

/** The parts of a coordination.k8s.io/v1 Lease a lock reads and writes. Times are RFC 3339 strings. */
export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
  /** Set on every record read from the store; required by `update`. */
  resourceVersion?: string;
}

/**
 * One Lease object. `create`, `update` and `delete` throw a LeaseConflictError when the server
 * answers 409: the Lease already exists, or the resourceVersion is no longer the current one.
 */
export interface LeaseStore {
  /** For messages, e.g. `kube-system/systemprompt-apply`. */
  readonly name?: string;
  /** The Lease, or undefined when there is none. */
  get(): Promise<LeaseRecord | undefined>;
  create(record: LeaseRecord): Promise<LeaseRecord>;
  /** Replace the Lease if its resourceVersion is still `record.resourceVersion`. */
  update(record: LeaseRecord & { resourceVersion: string }): Promise<LeaseRecord>;
  /** Delete the Lease if its resourceVersion is still `resourceVersion`; a Lease already gone is fine. */
  delete(resourceVersion: string): Promise<void>;
}

/** The server refused a Lease write because someone else wrote first (HTTP 409). */
export class LeaseConflictError extends SystemPromptError {
  /** The Kubernetes `reason`: `AlreadyExists` or `Conflict`. */
  readonly reason: string | undefined;
  constructor(message: string, opts: { reason?: string; cause?: unknown } = {}) {
    super(message, { cause: opts.cause, hint: 'another process wrote the same Lease; read it again' });
    this.reason = opts.reason;
  }
}

export type LockLostReason = 'renew-deadline' | 'taken-over' | 'deleted' | 'released' | 'not-acquired';

/**
 * The lock is not held (any more): writes must stop. `lock.signal` is aborted with this error as its
 * reason, and `check()` throws it.
 */
export class LockLostError extends FencedError {
  readonly reason: LockLostReason;
  /** Who holds the Lease now, when known. */
  readonly holder: string | undefined;
  constructor(message: string, opts: { reason: LockLostReason; holder?: string; hint?: string; cause?: unknown }) {
    super(message, { hint: opts.hint, cause: opts.cause });
    this.reason = opts.reason;
    this.holder = opts.holder;
  }
}

/** Another holder has the Lease and did not let it go within the acquire timeout. */
export class LockHeldError extends ConflictError {
  constructor(readonly holder: string, message: string, opts: { hint?: string } = {}) {
    super(message, opts);
  }
}

/** Lease times are MicroTime: RFC 3339 in UTC with exactly six fractional digits. */
export function microTime(t: number | string | Date): string {
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) throw new RangeError(`not a time: ${String(t)}`);
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

interface LeaseJson {
  metadata?: { resourceVersion?: string };
  spec?: { holderIdentity?: string | null; leaseDurationSeconds?: number | null; acquireTime?: string | null; renewTime?: string | null; leaseTransitions?: number | null };
}

function fromJson(json: LeaseJson): LeaseRecord {
  const s = json.spec ?? {};
  const r: LeaseRecord = {};
  if (s.holderIdentity != null) r.holderIdentity = s.holderIdentity;
  if (s.leaseDurationSeconds != null) r.leaseDurationSeconds = s.leaseDurationSeconds;
  if (s.acquireTime != null) r.acquireTime = s.acquireTime;
  if (s.renewTime != null) r.renewTime = s.renewTime;
  if (s.leaseTransitions != null) r.leaseTransitions = s.leaseTransitions;
  if (json.metadata?.resourceVersion) r.resourceVersion = json.metadata.resourceVersion;
  return r;
}

function statusReason(body: unknown): string | undefined {
  try {
    const b = typeof body === 'string' ? JSON.parse(body) : body;
    const reason = (b as { reason?: unknown })?.reason;
    return typeof reason === 'string' ? reason : undefined;
  } catch {
    return undefined;
  }
}

/** A LeaseStore on the API server: plain JSON requests (no client-node model (de)serialisation). */
export function kubeLeaseStore(http: Pick<KubeHttp, 'request'>, namespace: string, name: string, labels?: Record<string, string>): LeaseStore {
  const collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const item = `${collection}/${encodeURIComponent(name)}`;
  const where = `${namespace}/${name}`;

  const body = (r: LeaseRecord) => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      namespace,
      ...(labels && Object.keys(labels).length > 0 ? { labels } : {}),
      ...(r.resourceVersion ? { resourceVersion: r.resourceVersion } : {}),
    },
    spec: {
      ...(r.holderIdentity !== undefined ? { holderIdentity: r.holderIdentity } : {}),
      ...(r.leaseDurationSeconds !== undefined ? { leaseDurationSeconds: r.leaseDurationSeconds } : {}),
      ...(r.acquireTime !== undefined ? { acquireTime: microTime(r.acquireTime) } : {}),
      ...(r.renewTime !== undefined ? { renewTime: microTime(r.renewTime) } : {}),
      ...(r.leaseTransitions !== undefined ? { leaseTransitions: r.leaseTransitions } : {}),
    },
  });

  const fail = (what: string, e: unknown): unknown => {
    if ((e as { code?: unknown })?.code === 409) {
      const reason = statusReason((e as { body?: unknown }).body);
      return new LeaseConflictError(`${what} Lease ${where}: ${reason === 'AlreadyExists' ? 'it already exists' : 'it was changed by someone else'}`, { reason, cause: e });
    }
    return kubeError(`${what} Lease ${where}`, e);
  };

  return {
    name: where,
    async get() {
      try {
        return fromJson(await http.request<LeaseJson>('GET', item));
      } catch (e) {
        if ((e as { code?: unknown })?.code === 404) return undefined;
        throw fail('read', e);
      }
    },
    async create(r) {
      try {
        return fromJson(await http.request<LeaseJson>('POST', collection, { body: body({ ...r, resourceVersion: undefined }) }));
      } catch (e) {
        throw fail('create', e);
      }
    },
    async update(r) {
      if (!r.resourceVersion) throw new RangeError('a Lease update needs the resourceVersion it replaces');
      try {
        return fromJson(await http.request<LeaseJson>('PUT', item, { body: body(r) }));
      } catch (e) {
        throw fail('update', e);
      }
    },
    async delete(resourceVersion) {
      try {
        await http.request('DELETE', item, { body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion } } });
      } catch (e) {
        if ((e as { code?: unknown })?.code === 404) return;
        throw fail('delete', e);
      }
    },
  };
}

/** What a lock reports while it runs; nothing it does goes unreported. */
export type LeaseEvent =
  | { type: 'acquired'; epoch: number; previousHolder?: string }
  | { type: 'acquire-failed'; error: unknown }
  | { type: 'renewed'; epoch: number }
  | { type: 'renew-failed'; error: unknown; sinceLastRenewMs: number }
  | { type: 'lost'; error: LockLostError }
  | { type: 'released'; deleted: boolean }
  | { type: 'release-failed'; error: unknown };

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export interface LeaseLockOptions {
  /** Written as the Lease's holderIdentity. Default: unique to this lock (hostname, pid, a random UUID). */
  identity?: string;
  /** How long others wait for a renewal before they take the Lease over. Default 15 s. */
  leaseDurationMs?: number;
  /** A holder that has not renewed for this long stops writing. Default 10 s. */
  renewDeadlineMs?: number;
  /** Renewal and acquire-retry interval. Default 2 s. */
  retryPeriodMs?: number;
  now?: () => number;
  /** Resolves after `ms`, or early when `signal` aborts. Default: an unref'd timer. */
  sleep?: Sleep;
  onEvent?: (event: LeaseEvent) => void;
}

export interface AcquireOptions {
  /** How long to wait for another holder; 0 (the default) fails at once. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called before each wait: who holds the Lease, and in how long it expires unless renewed. */
  onWait?: (holder: string, expiresInMs: number) => void;
}

/** client-go's JitterFactor: renewDeadline must leave room for more than one retry. */
const JITTER_FACTOR = 1.2;

/** Like defaultSleep, but keeps the process alive: waiting for the lock is all a caller does then. */
const waitingSleep: Sleep = (ms, signal) => sleepFor(ms, signal, true);

export const defaultSleep: Sleep = (ms, signal) => sleepFor(ms, signal, false);

function sleepFor(ms: number, signal: AbortSignal | undefined, ref: boolean): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    if (!ref) timer.unref();
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A holder identity unique to one lock in one process. */
export function uniqueIdentity(): string {
  return `${os.hostname()} pid ${process.pid} ${randomUUID()}`;
}

type State = 'idle' | 'acquiring' | 'held' | 'lost' | 'released';

const seconds = (ms: number): string => `${Math.max(0, Math.ceil(ms / 100) / 10)} s`;

/**
 * A lock held as a Kubernetes Lease, with fencing (client-go `leaderelection`, plus what it lacks).
 *
 * - Acquire creates the Lease, or takes it over when its holder released it or stopped renewing
 *   (unchanged for its lease duration since we first saw it, or renewTime + lease duration passed).
 *   Every takeover is a PUT on the resourceVersion we read, so of two candidates one wins.
 * - The holder renews every retry period. A failed renewal is reported and retried on the next
 *   tick; once the renew deadline passes without a success, or the Lease names another holder, the
 *   lock is lost: `signal` aborts with a LockLostError and renewing stops.
 * - `check()` guards every write. It reads the clock rather than trusting a timer to have run, so a
 *   process that was paused past its renew deadline stops writing at once. The time of a renewal is
 *   the time its request was sent: no other candidate can have started timing expiry earlier, so
 *   while `check()` passes nobody else can have taken the Lease over (lease duration > renew
 *   deadline; the margin absorbs clock-rate drift and the time between `check()` and the write,
 *   and bounds how far clocks may disagree for the renewTime rule).
 * - `epoch` is the Lease's leaseTransitions, increased by every acquisition: a fencing token.
 * - `release()` deletes the Lease only while its resourceVersion is the one we last wrote.
 *
 * One lock, one acquisition: after release (or loss) construct a new LeaseLock.
 */
export class LeaseLock {
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;

  private readonly now: () => number;
  private readonly sleep: Sleep;
  /** Waits while acquiring: a timer that keeps the process alive (the renewal timers do not). */
  private readonly waitSleep: Sleep;
  private readonly onEvent: ((event: LeaseEvent) => void) | undefined;
  private readonly lostController = new AbortController();
  /** Aborted on loss and release: stops the renew loop and any acquire wait. */
  private readonly stopController = new AbortController();

  private state: State = 'idle';
  private record: LeaseRecord | undefined;
  private lastRenewAt = 0;
  private lostError: LockLostError | undefined;
  private acquiring: Promise<void> | undefined;
  private renewing: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private releasing: Promise<void> | undefined;

  constructor(private readonly store: LeaseStore, opts: LeaseLockOptions = {}) {
    this.identity = opts.identity ?? uniqueIdentity();
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? defaultSleep;
    this.waitSleep = opts.sleep ?? waitingSleep;
    this.onEvent = opts.onEvent;
    if (!this.identity) throw new UsageError('a lock needs a non-empty holder identity');
    for (const [k, v] of [['lease duration', this.leaseDurationMs], ['renew deadline', this.renewDeadlineMs], ['retry period', this.retryPeriodMs]] as const) {
      if (!Number.isFinite(v) || v <= 0) throw new UsageError(`the lock's ${k} must be a positive number of milliseconds (got ${v})`);
    }
    if (this.leaseDurationMs <= this.renewDeadlineMs) {
      throw new UsageError(`the lock's lease duration (${this.leaseDurationMs} ms) must be longer than its renew deadline (${this.renewDeadlineMs} ms)`);
    }
    if (this.renewDeadlineMs <= JITTER_FACTOR * this.retryPeriodMs) {
      throw new UsageError(`the lock's renew deadline (${this.renewDeadlineMs} ms) must be longer than ${JITTER_FACTOR} × its retry period (${this.retryPeriodMs} ms)`);
    }
  }

  /** Aborted, with a LockLostError as its reason, when the lock is lost or released. Pass it to every write. */
  get signal(): AbortSignal {
    return this.lostController.signal;
  }

  /** Held, by the clock: false as soon as the renew deadline has passed, even if no timer has run. */
  get held(): boolean {
    return this.refresh();
  }

  /** The Lease's leaseTransitions at our acquisition: a fencing token. Undefined before acquiring. */
  get epoch(): number | undefined {
    return this.record ? (this.record.leaseTransitions ?? 0) : undefined;
  }

  private get where(): string {
    return this.store.name ? `Lease ${this.store.name}` : 'the Lease';
  }

  /** Fencing: throws a LockLostError unless the lock is held and was renewed within the renew deadline. */
  check(): void {
    if (this.refresh()) return;
    throw this.lostError ?? new LockLostError(`the lock on ${this.where} is not held`, { reason: 'not-acquired', hint: 'acquire the lock before writing' });
  }

  /**
   * Take the lock, waiting up to `timeoutMs` for another holder to release it or stop renewing.
   * Throws a ConflictError naming the holder when the wait is over.
   */
  acquire(opts: AcquireOptions = {}): Promise<void> {
    if (this.state !== 'idle') {
      return Promise.reject(new UsageError(`this lock is already ${this.state === 'acquiring' ? 'being acquired' : this.state}; create a new LeaseLock`));
    }
    this.state = 'acquiring';
    this.acquiring = this.doAcquire(opts).catch((e: unknown) => {
      if (this.state === 'acquiring') this.state = 'idle';
      throw e;
    });
    return this.acquiring;
  }

  private async doAcquire(opts: AcquireOptions): Promise<void> {
    const timeoutMs = Math.max(0, opts.timeoutMs ?? 0);
    const deadline = this.now() + timeoutMs;
    const waitSignal = opts.signal ? AbortSignal.any([this.stopController.signal, opts.signal]) : this.stopController.signal;
    /** When we first saw the current resourceVersion: others' expiry is timed from there (client-go). */
    let observed: { rv: string | undefined; at: number } | undefined;
    let first = true;
    for (;;) {
      this.throwIfStopped(opts.signal);
      let wait: { holder: string; expiresInMs: number; expiresAt: number } | undefined;
      try {
        let current = first ? await this.tryCreate() : await this.store.get();
        first = false;
        if (current === undefined) current = await this.tryCreate();
        if (current === 'created') return;
        if (current === undefined) continue; // deleted again in between
        const now = this.now();
        if (!observed || observed.rv !== current.resourceVersion) observed = { rv: current.resourceVersion, at: now };
        const holder = current.holderIdentity ?? '';
        const durationMs = current.leaseDurationSeconds != null && current.leaseDurationSeconds > 0 ? current.leaseDurationSeconds * 1000 : this.leaseDurationMs;
        const renewedAt = current.renewTime ? Date.parse(current.renewTime) : Number.NaN;
        const expiresAt = Math.min(observed.at + durationMs, Number.isNaN(renewedAt) ? Number.POSITIVE_INFINITY : renewedAt + durationMs);
        if (holder === '' || holder === this.identity || now >= expiresAt) {
          if (await this.tryTakeOver(current)) return;
          continue; // someone else won the race: read what they wrote
        }
        wait = { holder, expiresAt, expiresInMs: expiresAt - now };
      } catch (e) {
        if (!isTransient(e) || this.now() >= deadline) throw e;
        this.emit({ type: 'acquire-failed', error: e });
      }
      const now = this.now();
      if (wait && now >= deadline) {
        throw new LockHeldError(
          wait.holder,
          `${this.where} is held by ${wait.holder}; it expires in ${seconds(wait.expiresInMs)} (at ${new Date(wait.expiresAt).toISOString()}) unless its holder renews it`,
          { hint: `wait for the holder to finish${timeoutMs > 0 ? ` (waited ${seconds(timeoutMs)})` : ''}; a holder that died frees the lock one lease duration after its last renewal` },
        );
      }
      if (wait) opts.onWait?.(wait.holder, wait.expiresInMs);
      await this.waitSleep(Math.min(this.retryPeriodMs, Math.max(0, deadline - now)), waitSignal);
    }
  }

  private throwIfStopped(signal: AbortSignal | undefined): void {
    if (this.stopController.signal.aborted) throw new AbortedError(`the lock on ${this.where} was released while waiting for it`);
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new AbortedError(`waiting for the lock on ${this.where} was cancelled`);
  }

  /** Create the Lease naming us; 'created', or the current record when it already exists. */
  private async tryCreate(): Promise<'created' | LeaseRecord | undefined> {
    const sentAt = this.now();
    const t = microTime(sentAt);
    try {
      const rec = await this.store.create({ holderIdentity: this.identity, leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000), acquireTime: t, renewTime: t, leaseTransitions: 0 });
      this.onAcquired(rec, sentAt, undefined);
      return 'created';
    } catch (e) {
      if (!(e instanceof LeaseConflictError)) throw e;
      return this.store.get();
    }
  }

  /** PUT on the resourceVersion we read: true when we won, false when someone else wrote first. */
  private async tryTakeOver(current: LeaseRecord): Promise<boolean> {
    if (!current.resourceVersion) return false;
    const sentAt = this.now();
    const t = microTime(sentAt);
    try {
      const rec = await this.store.update({
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        acquireTime: t,
        renewTime: t,
        // Every acquisition is a new epoch, also when a restarted process reuses its identity.
        leaseTransitions: (current.leaseTransitions ?? 0) + 1,
        resourceVersion: current.resourceVersion,
      });
      this.onAcquired(rec, sentAt, current.holderIdentity || undefined);
      return true;
    } catch (e) {
      if (e instanceof LeaseConflictError) return false;
      throw e;
    }
  }

  private onAcquired(rec: LeaseRecord, sentAt: number, previousHolder: string | undefined): void {
    this.record = rec;
    this.lastRenewAt = sentAt;
    this.state = 'held';
    this.emit({ type: 'acquired', epoch: rec.leaseTransitions ?? 0, ...(previousHolder ? { previousHolder } : {}) });
    this.loop = this.renewLoop();
  }

  private async renewLoop(): Promise<void> {
    const stop = this.stopController.signal;
    while (this.state === 'held') {
      try {
        await this.sleep(this.retryPeriodMs, stop);
      } catch {
        /* a sleep that rejects on abort: the state decides below */
      }
      if (stop.aborted || !this.refresh()) break;
      // A renewal still in flight (a slow server) is not doubled; the deadline above still applies.
      if (!this.renewing) this.renewing = this.renewOnce().finally(() => (this.renewing = undefined));
    }
  }

  /** One renewal. Never rejects: failures are reported, and the deadline decides when they cost the lock. */
  private async renewOnce(): Promise<void> {
    const record = this.record;
    if (!record?.resourceVersion) return;
    const sentAt = this.now();
    try {
      const rec = await this.store.update({ ...record, holderIdentity: this.identity, renewTime: microTime(sentAt), resourceVersion: record.resourceVersion });
      // Even when the lock was declared lost meanwhile, remember the version we wrote, so that
      // release() can delete it rather than leave others waiting for it to expire.
      this.record = rec;
      if (this.state !== 'held') return;
      this.lastRenewAt = sentAt;
      this.emit({ type: 'renewed', epoch: rec.leaseTransitions ?? 0 });
    } catch (e) {
      if (this.state !== 'held') return;
      this.emit({ type: 'renew-failed', error: e, sinceLastRenewMs: this.now() - this.lastRenewAt });
      if (e instanceof LeaseConflictError) await this.afterConflict();
      this.refresh();
    }
  }

  /** A renewal got 409: find out whether the Lease is still ours. */
  private async afterConflict(): Promise<void> {
    let current: LeaseRecord | undefined;
    try {
      current = await this.store.get();
    } catch (e) {
      if (this.state === 'held') this.emit({ type: 'renew-failed', error: e, sinceLastRenewMs: this.now() - this.lastRenewAt });
      return;
    }
    if (this.state !== 'held') return;
    if (!current) {
      this.lose(new LockLostError(`lost the lock: ${this.where} was deleted by someone else`, { reason: 'deleted', hint: 'writing stopped; run again' }));
    } else if (current.holderIdentity !== this.identity || (current.leaseTransitions ?? 0) !== (this.record?.leaseTransitions ?? 0)) {
      const holder = current.holderIdentity || undefined;
      this.lose(new LockLostError(`lost the lock: ${this.where} is now held by ${holder ?? 'nobody'}`, { reason: 'taken-over', ...(holder ? { holder } : {}), hint: 'writing stopped; run again once the other holder is done' }));
    } else {
      // Our own write whose answer we never got: carry on from its version (the next tick renews it).
      this.record = current;
    }
  }

  /** Held by the clock; moves to lost when the renew deadline has passed. */
  private refresh(): boolean {
    if (this.state !== 'held') return false;
    const since = this.now() - this.lastRenewAt;
    if (since < this.renewDeadlineMs) return true;
    this.lose(
      new LockLostError(`lost the lock on ${this.where}: not renewed for ${seconds(since)} (renew deadline ${seconds(this.renewDeadlineMs)})`, {
        reason: 'renew-deadline',
        hint: 'writing stopped; is the API server reachable? run again',
      }),
    );
    return false;
  }

  private lose(error: LockLostError): void {
    if (this.state !== 'held') return;
    this.state = 'lost';
    this.lostError = error;
    this.stopController.abort();
    this.lostController.abort(error);
    this.emit({ type: 'lost', error });
  }

  /**
   * Stop renewing and delete the Lease if it still has the version we last wrote. Idempotent.
   * Rejects only when the lock was held and the delete failed for another reason than a conflict
   * (the Lease then expires on its own); the lock counts as released either way.
   */
  release(): Promise<void> {
    this.releasing ??= this.doRelease();
    return this.releasing;
  }

  private async doRelease(): Promise<void> {
    this.stopController.abort(); // ends the renew loop and any acquire wait
    await this.acquiring?.catch(() => undefined); // its failure was the caller's to see
    const was = this.state;
    const lost = this.lostError;
    this.state = 'released';
    this.lostError ??= new LockLostError(`the lock on ${this.where} was released`, { reason: 'released' });
    if (!this.lostController.signal.aborted) this.lostController.abort(this.lostError);
    await this.loop;
    await this.renewing; // a renewal in flight may still move the resourceVersion we delete on
    if (was !== 'held' && was !== 'lost') return;
    const rv = this.record?.resourceVersion;
    if (!rv || lost?.reason === 'taken-over' || lost?.reason === 'deleted') {
      this.emit({ type: 'released', deleted: false });
      return;
    }
    try {
      await this.store.delete(rv);
      this.emit({ type: 'released', deleted: true });
    } catch (e) {
      if (e instanceof LeaseConflictError) {
        // Someone else wrote the Lease after our last write: it is theirs now, not ours to delete.
        this.emit({ type: 'released', deleted: false });
        return;
      }
      this.emit({ type: 'release-failed', error: e });
      if (was === 'held') throw e;
    }
  }

  private emit(event: LeaseEvent): void {
    try {
      this.onEvent?.(event);
    } catch {
      /* a listener that throws is the listener's bug; it must not cost the lock or skip its cleanup */
    }
  }
}
