import { connection } from "next/server";
import { Chat } from "../chat";

// Nonces need a page rendered per request.
export default async function Csp() {
  await connection();
  return <Chat eager />;
}
