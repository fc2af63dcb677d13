// The document's LongPollingClient, corrected:
// - a sequence cursor instead of the server's timestamp: nothing skipped, nothing twice;
// - every response carries the next cursor, a timeout is normal: poll again at once;
// - 410 Gone (cursor older than the history): load the snapshot, poll on from its cursor;
// - errors back off exponentially with jitter instead of a fixed 5 s;
// - no Content-Type header on GET (it has no body, and it forces a CORS preflight).
class LongPollingClient {
    constructor(baseUrl, userId, options = {}) {
        this.baseUrl = baseUrl;
        this.userId = userId;
        this.isPolling = false;
        this.cursor = options.cursor || 0;
        this.pollTimeout = options.pollTimeout || 30000;
        this.maxBackoff = options.maxBackoff || 30000;
        this.failures = 0;
        this.handlers = {};
    }

    startPolling() {
        if (this.isPolling) return;
        this.isPolling = true;
        this.poll();
    }

    async poll() {
        if (!this.isPolling) return;
        const base = `${this.baseUrl}/api/notifications/${encodeURIComponent(this.userId)}`;
        try {
            const params = new URLSearchParams({
                cursor: this.cursor,
                timeout: this.pollTimeout / 1000
            });
            let response = await fetch(`${base}/poll?${params}`);
            if (response.status === 410) {
                this.emit('resync');
                response = await fetch(base);
            }
            if (!response.ok) {
                throw new Error(`HTTP ${response.status}`);
            }
            const data = await response.json();
            data.notifications.forEach(n => this.handleNotification(n));
            this.cursor = data.cursor;
            this.failures = 0;
            this.poll();
        } catch (error) {
            this.emit('error', error);
            const bound = Math.min(this.maxBackoff, 500 * 2 ** this.failures++);
            setTimeout(() => this.poll(), Math.random() * bound);
        }
    }

    stopPolling() {
        this.isPolling = false;
    }

    handleNotification(notification) {
        this.emit('notification', notification);
        this.emit(`notification:${notification.type}`, notification);
    }

    on(event, handler) {
        if (!this.handlers[event]) {
            this.handlers[event] = [];
        }
        this.handlers[event].push(handler);
    }

    emit(event, data) {
        (this.handlers[event] || []).forEach(handler => handler(data));
    }

    async sendNotification(recipientId, type, data) {
        const response = await fetch(`${this.baseUrl}/api/notifications/send`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ user_id: recipientId, type: type, data: data })
        });
        return await response.json();
    }
}
