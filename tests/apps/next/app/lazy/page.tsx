import { Chat } from "../chat";

// Loaded on a route of its own; the client is made on the first click.
export default function Lazy() {
  return <Chat eager={false} />;
}
