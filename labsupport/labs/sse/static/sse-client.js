// The document's SSEClient, corrected:
// - named events: the server sends `event: news_article`, so we listen with
//   addEventListener (onmessage only sees events without an event: line);
// - EventSource reconnects by itself and sends Last-Event-ID: we only step in
//   when it has given up (readyState CLOSED, e.g. a 410 after too long away);
// - new URL(url, location.href): the document's new URL('/events') throws;
// - server data is shown with textContent, never innerHTML (no XSS).
class SSEClient {
    constructor(url, options = {}) {
        this.url = url;
        this.options = options;
        this.eventSource = null;
        this.reconnectAttempts = 0;
        this.maxReconnectAttempts = options.maxReconnectAttempts || 5;
        this.reconnectInterval = options.reconnectInterval || 5000;
        this.eventTypes = options.eventTypes || ['connected', 'news_article', 'notification', 'message'];
        this.handlers = {};
    }

    connect() {
        const url = new URL(this.url, window.location.href);
        if (this.options.clientId) {
            url.searchParams.set('client_id', this.options.clientId);
        }

        this.eventSource = new EventSource(url.toString());

        this.eventSource.onopen = (event) => {
            this.reconnectAttempts = 0;
            this.emit('open', event);
        };

        for (const type of this.eventTypes) {
            this.eventSource.addEventListener(type, (event) => {
                try {
                    const message = JSON.parse(event.data);
                    this.emit(type, message.data, event.lastEventId);
                } catch (error) {
                    console.error('Error parsing SSE message:', error);
                }
            });
        }

        this.eventSource.onerror = (event) => {
            this.emit('error', event);
            if (this.eventSource.readyState === EventSource.CLOSED) {
                this.handleReconnect();
            }
        };
    }

    handleReconnect() {
        if (this.reconnectAttempts < this.maxReconnectAttempts) {
            this.reconnectAttempts++;
            setTimeout(() => this.connect(), this.reconnectInterval);
        } else {
            this.emit('max_reconnects_reached');
        }
    }

    on(eventType, handler) {
        if (!this.handlers[eventType]) {
            this.handlers[eventType] = [];
        }
        this.handlers[eventType].push(handler);
    }

    emit(eventType, data, id) {
        (this.handlers[eventType] || []).forEach(handler => handler(data, id));
    }

    close() {
        if (this.eventSource) {
            this.eventSource.close();
        }
    }
}
