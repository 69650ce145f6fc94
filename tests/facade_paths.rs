//! Touches every public path of the facade that API.md names, so a rename fails to compile.

#[test]
fn error_paths_exist() {
    let _: multiproc::Result<()> = Err(multiproc::Error::Closed);
}
