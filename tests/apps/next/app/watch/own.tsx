"use client";
// An app that makes its Client itself, once per page (outside React), and watches it with
// useMauWatch: StrictMode's mount–unmount–mount must leave exactly one watch on it.
import { useEffect, useState } from "react";
import { Client, type ConnectionState } from "@twilio/conversations";
import { useMauStats, useMauWatch } from "mau-beacon/react";

let shared: Client | undefined;
const param = (name: string) => new URLSearchParams(window.location.search).get(name) ?? "";

export function OwnClient() {
  const [client, setClient] = useState<Client | null>(null);
  const [state, setState] = useState<string>("unknown");
  const [token, setToken] = useState<string>();
  useEffect(() => {
    setToken(param("token"));
    shared ??= new Client(param("token"), { Twilsock: { uri: param("twilsock") } });
    const c = shared;
    (window as unknown as { client?: Client }).client = c;
    const on = (s: ConnectionState) => setState(s);
    c.on("connectionStateChanged", on);
    setClient(c);
    return () => {
      c.off("connectionStateChanged", on);
    };
  }, []);
  return (
    <main>
      <p id="state">{state}</p>
      {client && state === "connected" && <Watcher client={client} token={token} />}
    </main>
  );
}

/** Mounted once the client is connected, so StrictMode mounts, unmounts and mounts it with
 * a connected client: a second watch would count a second connect at once. */
function Watcher({ client, token }: { client: Client; token?: string }) {
  useMauWatch(client, { token });
  const stats = useMauStats();
  return (
    <>
      <p id="delivered">{stats ? String(stats.delivered) : "-"}</p>
      <p id="seen">{stats ? String(stats.connectsSeen) : "-"}</p>
    </>
  );
}
