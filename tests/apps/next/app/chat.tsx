"use client";
// README's client recipe: the chat client made by useLazyClient (one client, one socket
// under StrictMode), at once (`eager`) or on the first click on the button; the provider's
// tracker watches it. The token and the fake Twilio's address come from the first page's
// query string here (kept for the tab, for client-side navigation); an app fetches its
// token from its backend.
import { useEffect, useState } from "react";
import { Client, type ConnectionState } from "@twilio/conversations";
import { useLazyClient, useMauStats, useMauTracker } from "mau-beacon/react";

function param(name: string): string {
  const given = new URLSearchParams(window.location.search).get(name);
  if (given) sessionStorage.setItem(name, given);
  return given ?? sessionStorage.getItem(name) ?? "";
}
if (typeof window !== "undefined") ["token", "twilsock"].forEach(param);

export function Chat({ eager }: { eager: boolean }) {
  const chat = useLazyClient({
    getToken: () => param("token"),
    createClient: (token: string) => new Client(token, { Twilsock: { uri: param("twilsock") } }),
  });
  const { get } = chat;
  useEffect(() => {
    if (eager) get().catch(() => {}); // rejects until the LazyClient is made
  }, [eager, get]);
  const [state, setState] = useState<string>("unknown");
  useEffect(() => {
    const client = chat.client;
    if (!client) return undefined;
    setState(client.connectionState);
    const on = (s: ConnectionState) => setState(s);
    client.on("connectionStateChanged", on);
    return () => {
      client.off("connectionStateChanged", on);
    };
  }, [chat.client]);
  const stats = useMauStats();
  const tracker = useMauTracker();
  useEffect(() => {
    (window as unknown as { tracker?: typeof tracker }).tracker = tracker;
  }, [tracker]);
  return (
    <main>
      <h1>Chat</h1>
      {eager ? null : <button id="open" ref={chat.ref}>Open chat</button>}
      <p id="lazy">{chat.state}</p>
      <p id="state">{state}</p>
      <p id="delivered">{stats ? String(stats.delivered) : "-"}</p>
    </main>
  );
}
