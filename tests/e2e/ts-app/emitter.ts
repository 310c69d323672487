// Clients that are not Twilio's own `Client` but Node-style emitters: a subclass of an
// `EventEmitter` declared as @types/node declares it (the classic signature and the generic
// one of @types/node 22+), and a wrapper whose listeners are typed `(...args: any[]) => void`.
import { ConversationsClientLike, LazyClient, MauTracker, startTracker } from "mau-beacon";

declare class ClassicEmitter {
  on(eventName: string | symbol, listener: (...args: any[]) => void): this;
  off(eventName: string | symbol, listener: (...args: any[]) => void): this;
  addListener(eventName: string | symbol, listener: (...args: any[]) => void): this;
  removeListener(eventName: string | symbol, listener: (...args: any[]) => void): this;
  emit(eventName: string | symbol, ...args: any[]): boolean;
}
class ChatClient extends ClassicEmitter {
  connectionState = "connecting";
  user = { identity: "alice" };
}

type EventMap<T> = Record<keyof T, any[]>;
type Listener<T extends EventMap<T>, E extends string | symbol> = {} extends T
  ? (...args: any[]) => void
  : (...args: E extends keyof T ? T[E] : any[]) => void;
declare class GenericEmitter<T extends EventMap<T> = any> {
  on<E extends string | symbol>(eventName: E, listener: Listener<T, E>): this;
  off<E extends string | symbol>(eventName: E, listener: Listener<T, E>): this;
}
class TypedClient extends GenericEmitter<{ connectionStateChanged: [state: string] }> {
  readonly connectionState: string = "connected";
}

const wrapper = {
  connectionState: "connected",
  on: (event: string, listener: (...args: any[]) => void) => wrapper,
  off: (event: string, listener: (...args: any[]) => void) => wrapper,
};
const legacy = {
  addListener(event: string, listener: (state: string) => void): void {},
  removeListener(event: string, listener: (state: string) => void): void {},
};

const tracker = startTracker({ collectorUrl: "/t/v1/beacons" });
tracker.watch(new ChatClient()).stop();
tracker.watch(new TypedClient()).stop();
tracker.watch(wrapper).stop();
tracker.watch(legacy).stop();
const asClient: ConversationsClientLike = new ChatClient();
new MauTracker({ collectorUrl: "/t" }).watch(asClient).stop();
new LazyClient({ createClient: () => new ChatClient(), getToken: () => "t" });
