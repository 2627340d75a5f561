// Anchor for the shared Asio precompiled header.
