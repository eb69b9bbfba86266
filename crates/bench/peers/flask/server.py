"""The Flask-SocketIO peer of `cargo xtask bench`: the stack the original chat apps were
written in, with the same room semantics as the ceiling and the socket.io peer — join a
room, and every message goes to the room's other members. No persistence, no presence.

    python server.py --listen 127.0.0.1:19300

Runs in gevent mode (Flask-SocketIO's recommended production mode) with
gevent-websocket serving the WebSocket transport.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402

from flask import Flask, request  # noqa: E402
from flask_socketio import SocketIO, emit, join_room  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(
    app,
    async_mode="gevent",
    ping_interval=25,
    ping_timeout=60,
    max_http_buffer_size=64 * 1024,
)
rooms = {}


@socketio.on("join")
def on_join(name):
    rooms[request.sid] = str(name)
    join_room(str(name))
    return True


@socketio.on("msg")
def on_msg(text):
    room = rooms.get(request.sid)
    if room is not None:
        emit("msg", text, to=room, include_self=False)


@socketio.on("disconnect")
def on_disconnect(*_):
    rooms.pop(request.sid, None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1:19300")
    host, port = parser.parse_args().listen.rsplit(":", 1)
    socketio.run(app, host=host, port=int(port), log_output=False)
