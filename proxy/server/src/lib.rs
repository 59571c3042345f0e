//! ollmlx-server: the HTTP front door.
