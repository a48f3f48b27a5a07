//! One-time import of the Go llamactl's per-instance JSON files. (To be written.)
