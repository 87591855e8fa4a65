"""The Scope client: REST calls, the WebRTC session and its send pacing (docs/scope.md)."""
