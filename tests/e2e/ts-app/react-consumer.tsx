// README's React recipes as a TypeScript app writes them, checked with strict tsc against
// the installed package's mau-beacon/react declarations (and @types/react).
import { useEffect, useState } from "react";
import type { ReactElement } from "react";
import type { ConversationsClientLike, MauBeaconError, SoftStats, SoftTracker } from "mau-beacon";
import { MauBeaconProvider, useLazyClient, useMauStats, useMauTracker, useMauWatch } from "mau-beacon/react";
import type { LazyClientHandle } from "mau-beacon/react";

/** Stands in for `@twilio/conversations`' Client: an emitter with `shutdown()`. */
declare class ChatClient {
  connectionState: string;
  on(event: string, listener: (...args: unknown[]) => void): this;
  off(event: string, listener: (...args: unknown[]) => void): this;
  shutdown(): Promise<void>;
}
declare function makeClient(token: string): ChatClient;
const asLike: ConversationsClientLike = makeClient("t");

export function Root(): ReactElement {
  return (
    <MauBeaconProvider collectorUrl="/t/v1/beacons" onError={(e: MauBeaconError) => console.warn(e.code, e.message)}>
      <Chat token="token" />
      <ChatButton />
    </MauBeaconProvider>
  );
}

export function Chat({ token }: { token: string }): ReactElement | null {
  const [client, setClient] = useState<ChatClient | null>(null);
  useEffect(() => {
    const c = makeClient(token);
    setClient(c);
    return () => {
      c.shutdown();
    };
  }, [token]);
  useMauWatch(client, { token });
  useMauWatch(client, { identity: "alice", context: "support" });
  const tracker: SoftTracker | undefined = useMauTracker();
  return tracker ? null : <p>no tracker</p>;
}

export function ChatButton(): ReactElement {
  const chat: LazyClientHandle<ChatClient> = useLazyClient({
    getToken: () => fetch("/twilio-token").then((r) => r.text()),
    createClient: (token: string) => makeClient(token),
  });
  const stats: SoftStats | undefined = useMauStats();
  const c: ChatClient | null = chat.client;
  chat.get().then((got: ChatClient) => got.shutdown());
  return (
    <button ref={chat.ref} data-state={chat.state} data-client={c ? "yes" : "no"}>
      {stats ? stats.delivered : "…"}
    </button>
  );
}
