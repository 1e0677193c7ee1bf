import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1

/// Hummingbird's WebSocket channel, with the desk's checks in front of the upgrade.
///
/// Hummingbird answers every refused upgrade with a bare `400 Bad Request`. A client (and an operator reading a
/// log) needs to know why: not signed in (401), or another site's page, or an agent with no destination (403). So
/// a handler between the HTTP decoder and the upgrade handler checks each upgrade request to `/ws` first, and
/// answers a refusal itself, with the status and the JSON message the rest of the desk uses.
struct GuardedWebSocketChannel: ServerChildChannel {
    typealias Value = HTTP1WebSocketUpgradeChannel.Value

    let inner: HTTP1WebSocketUpgradeChannel
    /// Why an upgrade request may not go on; nil: it may.
    let refusal: @Sendable (HTTPRequestHead) -> HTTPFailure?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        self.inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(WebSocketGuard(refusal: self.refusal), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await self.inner.handle(value: value, logger: logger)
    }

    /// The desk's HTTP server: HTTP/1.1, with WebSocket upgrades answered by `webSockets` once `refusal` has let
    /// them through.
    static func builder(
        webSockets: Router<BasicWebSocketRequestContext>,
        configuration: HTTP1WebSocketUpgradeChannel.Configuration,
        refusal: @escaping @Sendable (HTTPRequestHead) -> HTTPFailure?
    ) -> HTTPServerBuilder {
        let responder = webSockets.buildResponder()
        return HTTPServerBuilder { httpResponder in
            GuardedWebSocketChannel(
                inner: HTTP1WebSocketUpgradeChannel(
                    responder: httpResponder,
                    webSocketResponder: responder,
                    configuration: configuration
                ),
                refusal: refusal
            )
        }
    }
}

/// Checks a WebSocket upgrade request before the upgrade handler sees it; a refused one is answered here and the
/// connection closed. Every other request passes untouched.
final class WebSocketGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let refusal: @Sendable (HTTPRequestHead) -> HTTPFailure?
    /// A refused request's remaining parts are dropped.
    private var refused = false

    init(refusal: @escaping @Sendable (HTTPRequestHead) -> HTTPFailure?) {
        self.refusal = refusal
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        if case .head(let head) = part {
            self.refused = false
            if Self.isUpgrade(head), let failure = self.refusal(head) {
                self.refused = true
                self.refuse(context: context, failure)
                return
            }
        }
        if !self.refused {
            context.fireChannelRead(data)
        }
    }

    private func refuse(context: ChannelHandlerContext, _ failure: HTTPFailure) {
        var body = context.channel.allocator.buffer(capacity: 256)
        body.writeString(JSONReplies.refusal(code: failure.code, failure.message) + "\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        headers.add(name: "Connection", value: "close")
        if failure.status == .unauthorized {
            headers.add(name: "WWW-Authenticate", value: "Cookie realm=\"baton\"")
        }
        let status = HTTPResponseStatus(statusCode: failure.status.code, reasonPhrase: failure.status.reasonPhrase)
        context.write(
            self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
            promise: nil
        )
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }

    /// A request that asks to become a WebSocket.
    static func isUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.headers["Upgrade"].contains { $0.lowercased() == "websocket" }
    }
}
