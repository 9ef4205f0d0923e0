// The duet's WebSocket: keys go to the server, answers come back as notes with their times.
export class DuetSocket {
  constructor(onMessage, onClose) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.ws = new WebSocket(`${scheme}://${location.host}/api/duet`);
    this.ws.addEventListener("message", (e) => onMessage(JSON.parse(e.data)));
    this.ws.addEventListener("close", () => onClose());
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", resolve);
      this.ws.addEventListener("error", () => reject(new Error("the duet socket did not open")));
    });
  }
  send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }
  close() { this.send({type: "stop"}); this.ws.close(); }
}
