// Type declarations of tickwire.js, the client of the tickwire protocol v1.1
// (docs/protocol.md). Kept by hand beside the file they describe.

/** Close codes of the protocol. */
export declare const CloseCode: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  ABNORMAL: 1006;
  TOO_BIG: 1009;
  PROTOCOL: 4000;
  UNAUTHORIZED: 4001;
  SLOW_CONSUMER: 4008;
  TOO_MANY_CONNECTIONS: 4009;
  RATE_LIMITED: 4029;
}>;

export interface TradeData { price: number; size: number }
export interface QuoteData { bid: number; bid_size: number; ask: number; ask_size: number }
export interface BarData { open: number; high: number; low: number; close: number; volume: number; start: number; end: number }
export interface SignalData { signal: 'new_high' | 'new_low' | 'surge' | string; price: number; [k: string]: number | string }

/** One EVENT: `ch` is KIND:SYMBOL, `id` the Redis stream id (resume
 * position), `ts` the source's time in Unix ms. */
export interface TickwireEvent<D = TradeData | QuoteData | BarData | SignalData | Record<string, unknown>> {
  ch: string;
  id: string;
  ts: number;
  data: D;
}

export interface WelcomeFrame { type: 'welcome'; user: string; replica: string; heartbeat_ms: number; max_channels: number }
export interface SubscribedFrame { type: 'subscribed'; id?: string; channels: string[]; recovered?: Record<string, boolean> }
export interface UnsubscribedFrame { type: 'unsubscribed'; id?: string; channels: string[] }

export type Status =
  | { state: 'idle' }
  | { state: 'connecting'; attempt: number }
  | { state: 'open'; replica?: string; user?: string; heartbeatMs?: number; maxChannels?: number; transport?: 'sse' }
  | { state: 'reconnecting'; attempt: number; delayMs: number; retryAt: number; code: number; reason: string }
  | { state: 'closed'; code: number; reason: string };

export interface ErrorInfo {
  /** A protocol code (bad_request, forbidden, …), or a local one:
   * origin_refused, websocket_failed, bad_frame. */
  code: string;
  message: string;
  channels: string[];
  id?: string;
}

export interface GapInfo { channels: string[]; reason: string }
export interface SnapshotInfo { events: TickwireEvent[] }

export interface ClientEvents {
  status: Status;
  welcome: WelcomeFrame;
  event: TickwireEvent;
  snapshot: SnapshotInfo;
  gap: GapInfo;
  subscribed: SubscribedFrame;
  error: ErrorInfo;
  unauthorized: { code: string; reason: string };
}

export interface SubscriptionEvents {
  event: TickwireEvent;
  snapshot: SnapshotInfo;
  gap: GapInfo;
  subscribed: SubscribedFrame;
  error: TickwireError;
}

export declare class TickwireError extends Error {
  constructor(code: string, message?: string, channels?: string[]);
  code: string;
  channels: string[];
  /** The HTTP status, for errors of history(). */
  status?: number;
}

export interface ClientOptions {
  /** ws(s)://host/v1/stream, or a list tried in turn on each reconnect;
   * default: this page's host. */
  url?: string | string[];
  /** The JWT, or a function called before every connect. */
  token: string | (() => string | Promise<string>);
  auth?: 'query' | 'frame';
  wildcards?: 'expand' | 'snapshot';
  baseMs?: number;
  capMs?: number;
  penaltyMs?: number;
  connectTimeoutMs?: number;
  stableMs?: number;
  /** 'auto' (default) falls back to Server-Sent Events when WebSocket fails
   * where HTTP works; 'sse' forces it; 'websocket' never falls back. */
  transport?: 'auto' | 'websocket' | 'sse';
  /** Failures before opening that start the diagnosis (default 3). */
  probeAfter?: number;
  WebSocket?: unknown;
  EventSource?: unknown;
  fetch?: typeof fetch;
}

export interface SubscribeOptions {
  /** Default true: the latest retained event per channel first. */
  snapshot?: boolean;
  /** Resume from known ids: channel → id, or an id for a single channel. */
  since?: Record<string, string> | string;
  /** The server's pace for these channels, 50 to 60000 ms (throttle_ms). */
  throttleMs?: number;
}

export interface HistoryOptions {
  /** 1 to 1000, default 100. */
  limit?: number;
  after?: string;
  before?: string;
  signal?: AbortSignal;
}

export interface HistoryPage { channel: string; events: TickwireEvent[] }

/** The channels of one subscribe, with their own listeners. Awaiting it
 * gives the subscribed frame. */
export declare class Subscription implements PromiseLike<SubscribedFrame> {
  readonly client: TickwireClient;
  readonly channels: string[];
  readonly active: boolean;
  on<K extends keyof SubscriptionEvents>(type: K, fn: (detail: SubscriptionEvents[K]) => void): () => void;
  off<K extends keyof SubscriptionEvents>(type: K, fn: (detail: SubscriptionEvents[K]) => void): void;
  covers(channel: string): boolean;
  unsubscribe(): Promise<UnsubscribedFrame>;
  then<T1 = SubscribedFrame, T2 = never>(
    onFulfilled?: ((f: SubscribedFrame) => T1 | PromiseLike<T1>) | null,
    onRejected?: ((e: TickwireError) => T2 | PromiseLike<T2>) | null,
  ): Promise<T1 | T2>;
  catch<T = never>(onRejected?: ((e: TickwireError) => T | PromiseLike<T>) | null): Promise<SubscribedFrame | T>;
}

export declare class TickwireClient {
  constructor(opts: ClientOptions);
  url: string | undefined;
  urls: string[];
  state: 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';
  /** 'websocket' or 'sse': the transport in use. */
  using: 'websocket' | 'sse';
  welcome: WelcomeFrame | null;
  stats: { events: number; dropped: number; connects: number };
  readonly subscriptions: string[];
  readonly lastIds: Record<string, string>;

  on<K extends keyof ClientEvents>(type: K, fn: (detail: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(type: K, fn: (detail: ClientEvents[K]) => void): void;
  connect(): void;
  reconnectNow(): void;
  close(reason?: string): void;
  setToken(token: ClientOptions['token']): void;
  reauth(token: string): Promise<WelcomeFrame>;
  subscribe(channels: string | string[], opts?: SubscribeOptions): Subscription;
  unsubscribe(channels: string | string[]): Promise<UnsubscribedFrame>;
  history(channel: string, opts?: HistoryOptions): Promise<HistoryPage>;
  ping(): Promise<number>;
}

export declare function parseId(id: string): [string, string] | null;
export declare function compareIds(a: string, b: string): number;
export declare function isNewer(id: string, last: string | undefined): boolean;
export declare function normalizeChannel(ch: string): string;
export declare function isConcrete(ch: string): boolean;
export declare function wildcardOf(ch: string): string;
export declare function covers(pattern: string, ch: string): boolean;
export declare function backoffDelay(attempt: number, opts?: { baseMs?: number; capMs?: number; random?: () => number }): number;
export declare function classifyClose(code: number): { reconnect: boolean; penalty: boolean; reason: string };
export declare function buildResubscribe(
  patterns: Map<string, { snapshot?: boolean; throttleMs?: number }>,
  lastIds: Map<string, string>,
  opts?: { wildcards?: 'expand' | 'snapshot'; maxChannels?: number; maxPerFrame?: number },
): { frames: Array<{ channels: string[]; since?: Record<string, string>; snapshot: boolean; throttle_ms?: number }>; extra: string[] };
export declare function defaultUrl(loc?: { protocol: string; host: string }): string | undefined;
export declare function httpUrl(wsUrl: string, path: string): string;
export declare function withToken(url: string, token: string): string;
