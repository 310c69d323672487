import type { Metadata } from "next";
import type { ReactNode } from "react";
import Link from "next/link";
import { Beacon } from "./beacon";

// No favicon request (a 404 in the console).
export const metadata: Metadata = { icons: { icon: "data:," } };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <nav>
          <Link href="/" id="to-home">Home</Link> <Link href="/lazy" id="to-lazy">Lazy</Link>
        </nav>
        <Beacon>{children}</Beacon>
      </body>
    </html>
  );
}
