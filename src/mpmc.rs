//! The multi-producer multi-consumer ring (in progress).
