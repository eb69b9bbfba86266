// The socket.io peer of `cargo xtask bench`: a chat server with the same room semantics
// as the ceiling — join a room, and every message goes to the room's other members —
// written the way socket.io's own chat example is. No persistence, no presence.
//
//   node server.js --listen 127.0.0.1:19300
//
// Events: "join" (room name; acknowledged once joined) and "msg" (text, relayed).
const http = require("http");
const { Server } = require("socket.io");

const listenArg = process.argv.indexOf("--listen");
const [host, port] = (listenArg > 0 ? process.argv[listenArg + 1] : "127.0.0.1:19300").split(":");

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  // The generator's clients stay connected for the whole run.
  pingInterval: 25000,
  pingTimeout: 60000,
  maxHttpBufferSize: 64 * 1024,
});

io.on("connection", (socket) => {
  let room = null;
  socket.on("join", (name, ack) => {
    room = String(name);
    socket.join(room);
    if (typeof ack === "function") ack(true);
  });
  socket.on("msg", (text) => {
    if (room !== null) socket.to(room).emit("msg", text);
  });
});

httpServer.listen(Number(port), host);
