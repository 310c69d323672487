/** @jest-environment jsdom */
const { mountChat, tracker } = require("./chat.js");

test("the app's own test runs with mau-beacon imported", async () => {
  document.body.innerHTML = '<div id="chat"></div>';
  const client = { on() {}, off() {} };
  const unmount = mountChat(document.getElementById("chat"), client);
  expect(document.getElementById("chat").textContent).toBe("Chat");
  expect(await tracker.ready).toBe(false); // the inert build: no wasm, no beacons
  expect(await tracker.flush()).toBeUndefined();
  unmount();
});

test("Jest's jsdom environment resolves the package to its inert CommonJS entry", () => {
  expect(require.resolve("mau-beacon")).toMatch(/mau-beacon[\\/]js[\\/]inert\.cjs$/);
  const testing = require("mau-beacon/testing");
  expect(testing).toBe(require("mau-beacon"));
  expect(typeof testing.MauTracker).toBe("function");
  expect(new testing.MauTracker({ collectorUrl: "/t" }).stats().pending).toBe(0);
});
