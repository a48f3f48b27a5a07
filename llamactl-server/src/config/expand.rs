//! `${VAR}` and `${VAR:-default}` expansion in configuration text. (To be written.)
