from channels.generic.websocket import AsyncJsonWebsocketConsumer

# Close code for an anonymous connection (CONTRACT.md section 3).
CLOSE_UNAUTHENTICATED = 4401


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Push live readings, alerts and PPMS events to the browsers that may see them."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.accept()
