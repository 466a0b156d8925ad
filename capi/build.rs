//! Gives the shared library the name it is installed under (`libkingpin.so.0`), so programs
//! linked against it find it by that name.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkingpin.so.0");
}
