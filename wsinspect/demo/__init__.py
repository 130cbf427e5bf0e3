"""``wsinspect demo``: an embedded echo server and a small web page whose WebSocket goes through
the proxy, so a newcomer sees real traffic in one command."""
