//! Integration tests: the real `rrfeed` binary against the mock server, started in-process on port 0.

mod changes;
mod contract;
mod crm;
mod deploy;
mod faults;
mod fleet;
mod helpers;
mod input;
mod mappings;
mod mock_cmd;
mod monitoring;
mod operations;
mod real_world;
mod tls;
mod unattended;
mod upload;
mod webhook;
mod workbooks;
