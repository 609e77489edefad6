//! `container`: the test double of Apple's CLI (see `bottlebar_e2e::double`).
//! Used by the tests only; never shipped.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(bottlebar_e2e::double::main(args));
}
