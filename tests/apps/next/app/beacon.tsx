"use client";
// README's provider: one tracker per page, collector on the same site (next.config.ts).
import type { ReactNode } from "react";
import { MauBeaconProvider } from "mau-beacon/react";
import type { MauBeaconError } from "mau-beacon";

export function Beacon({ children }: { children: ReactNode }) {
  return (
    <MauBeaconProvider collectorUrl="/t/v1/beacons" onError={(e: MauBeaconError) => console.warn(`mau-beacon ${e.code}`)}>
      {children}
    </MauBeaconProvider>
  );
}
