//! Runs the offline emulator of every built-in provider until Ctrl-C, for
//! your own offline development and demos.
//!
//! ```sh
//! cargo run -p polyrelay --example emulate            # random free port
//! cargo run -p polyrelay --example emulate -- 8089    # fixed port
//! # elsewhere:
//! POLYRELAY_EMULATOR_URL=http://127.0.0.1:8089 your-program
//! ```

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 0,
    };
    let emulator =
        polyrelay::emulation::Emulator::start_on(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    polyrelay::emulation::mount_builtin(&emulator);
    println!(
        "polyrelay emulator serving {} providers",
        polyrelay::internal::builtin_providers().len()
    );
    println!("export POLYRELAY_EMULATOR_URL={}", emulator.base_url());
    tokio::signal::ctrl_c().await?;
    println!("{} requests served", emulator.served());
    Ok(())
}
