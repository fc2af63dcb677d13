// The document's ChatClient, moved from Socket.IO to the browser's native WebSocket.
//
// What changed: io(url, {auth}) became new WebSocket(url + "?token=..."), because a
// browser's WebSocket cannot set headers; socket.emit(name, data) became
// socket.send(JSON.stringify({type: name, ...data})); socket.on(name, fn) became one
// "message" listener that dispatches on the event's "type". The page shows what the
// server sends with textContent only, never innerHTML: a chat message is data, not markup.
"use strict";

class ChatClient {
    constructor(serverUrl, token) {
        this.serverUrl = serverUrl;
        this.token = token;
        this.socket = null;
        this.currentRoom = null;
    }

    connect() {
        const url = `${this.serverUrl}?token=${encodeURIComponent(this.token)}`;
        this.socket = new WebSocket(url);
        this.socket.addEventListener("open", () => this.onConnect());
        this.socket.addEventListener("close", (event) => this.onDisconnect(event));
        this.socket.addEventListener("message", (event) => this.dispatch(JSON.parse(event.data)));
    }

    dispatch(data) {
        const handlers = {
            connected: (d) => this.handleConnected(d),
            new_message: (d) => this.handleMessage(d),
            user_joined: (d) => this.handleUserJoined(d),
            user_left: (d) => this.handleUserLeft(d),
            user_typing: (d) => this.handleUserTyping(d),
            error: (d) => this.handleError(d),
        };
        (handlers[data.type] || ((d) => console.warn("Unknown event:", d)))(data);
    }

    emit(type, data) {
        this.socket.send(JSON.stringify({ type, ...data }));
    }

    joinRoom(roomId) {
        if (this.currentRoom) {
            this.leaveRoom(this.currentRoom);
        }
        this.currentRoom = roomId;
        this.emit("join_chat", { room_id: roomId });
    }

    leaveRoom(roomId) {
        this.emit("leave_chat", { room_id: roomId });
        if (this.currentRoom === roomId) {
            this.currentRoom = null;
        }
    }

    sendMessage(message) {
        if (!this.currentRoom) {
            console.error("Not in a room");
            return;
        }
        this.emit("send_message", { room_id: this.currentRoom, message });
    }

    setTyping(isTyping) {
        if (!this.currentRoom) return;
        this.emit("typing", { room_id: this.currentRoom, is_typing: isTyping });
    }

    // Event handlers: override in a subclass
    onConnect() {}
    onDisconnect(event) { console.log("Disconnected:", event.code, event.reason); }
    handleConnected(data) { console.log("Authentication successful:", data.message); }
    handleMessage(data) { console.log("New message:", data); }
    handleUserJoined(data) { console.log("User joined:", data); }
    handleUserLeft(data) { console.log("User left:", data); }
    handleUserTyping(data) { console.log("User typing:", data); }
    handleError(data) { console.error("Server error:", data.message); }

    disconnect() {
        if (this.socket) {
            this.socket.close(1000, "bye");
        }
    }
}

// The page: a ChatClient subclass that writes into the document with textContent.
class PageChatClient extends ChatClient {
    constructor(serverUrl, token, elements) {
        super(serverUrl, token);
        this.el = elements;
        this.typing = new Set();
    }

    line(kind, text) {
        const item = document.createElement("li");
        item.className = kind;
        item.textContent = text;
        this.el.messages.append(item);
        item.scrollIntoView({ block: "end" });
    }

    showTyping() {
        const names = [...this.typing];
        this.el.typing.textContent = names.length
            ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
    }

    onConnect() { this.el.status.textContent = "connected"; this.joinRoom(this.el.room.value); }
    onDisconnect(event) { this.el.status.textContent = `closed (${event.code})`; }
    handleConnected(data) { this.el.status.textContent = `connected as ${data.username}`; }
    handleMessage(data) {
        this.typing.delete(data.username);
        this.showTyping();
        this.line("message", `${data.username}: ${data.message}`);
    }
    handleUserJoined(data) { this.line("event", data.message); }
    handleUserLeft(data) { this.line("event", data.message); }
    handleUserTyping(data) {
        if (data.is_typing) this.typing.add(data.username); else this.typing.delete(data.username);
        this.showTyping();
    }
    handleError(data) { this.line("error", `error: ${data.message}`); }
}

function startPage() {
    const params = new URLSearchParams(location.search);
    const $ = (id) => document.getElementById(id);
    const elements = {
        status: $("status"), room: $("room"), messages: $("messages"), typing: $("typing"),
    };
    elements.room.value = params.get("room") || "general";
    const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    const client = new PageChatClient(wsUrl, params.get("token") || "", elements);
    window.chatClient = client;
    client.connect();

    const input = $("message");
    let typingTimer = null;
    input.addEventListener("input", () => {
        if (typingTimer === null) client.setTyping(true);
        clearTimeout(typingTimer);
        typingTimer = setTimeout(() => { client.setTyping(false); typingTimer = null; }, 2000);
    });
    $("send-form").addEventListener("submit", (event) => {
        event.preventDefault();
        if (!input.value.trim()) return;
        client.sendMessage(input.value);
        input.value = "";
        clearTimeout(typingTimer);
        if (typingTimer !== null) client.setTyping(false);
        typingTimer = null;
    });
    $("room-form").addEventListener("submit", (event) => {
        event.preventDefault();
        client.joinRoom(elements.room.value);
        elements.messages.replaceChildren();
    });
}

document.addEventListener("DOMContentLoaded", startPage);
