//! `ibflow`: the command-line front end (all of it lives in the library).

fn main() -> anyhow::Result<()> {
    ibflow::main()
}
