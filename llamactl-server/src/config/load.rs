//! Loading the configuration: defaults < YAML file < `LLAMACTL_*` environment. (To be written.)
