import { OwnClient } from "./own";

export default function Watch() {
  return <OwnClient />;
}
