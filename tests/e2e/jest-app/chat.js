// An app module that uses mau-beacon, as an app's component code does. Jest loads it with
// `require` (babel turns an app's `import` into that too).
const { startTracker } = require("mau-beacon");

const tracker = startTracker({ collectorUrl: "/t/v1/beacons" });

function mountChat(element, client) {
  const watch = tracker.watch(client, { identity: "alice" });
  element.textContent = "Chat";
  return () => watch.stop();
}

module.exports = { mountChat, tracker };
