//! The sandbox runtime's helper as a binary of its own, for stead-agent's tests (the `stead`
//! binary dispatches the same helper from its `main`).

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(stead_agent::sandbox::HELPER_ARG) {
        stead_agent::sandbox::helper_main(&args[2..]);
    }
    eprintln!(
        "usage: stead-sandbox-helper {} <subcommand> ...",
        stead_agent::sandbox::HELPER_ARG
    );
    std::process::exit(2);
}
