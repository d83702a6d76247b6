//! kizuki: the binary only hands over to the library's CLI.

fn main() -> std::process::ExitCode {
    kizuki::cli::main()
}
