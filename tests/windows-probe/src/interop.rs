//! Interop with real Windows Qt (tests/qt/win_peer.py): added in the next commit.
