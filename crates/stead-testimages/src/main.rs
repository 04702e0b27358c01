//! `stead-testimages OUT_DIR`: writes busybox.tar, nginx.tar and redis.tar into OUT_DIR and
//! prints each file with the names it carries.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out_dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: stead-testimages OUT_DIR");
        return ExitCode::from(2);
    };
    match stead_testimages::build_all(&PathBuf::from(out_dir)) {
        Ok(images) => {
            for image in images {
                println!(
                    "{} {} {}",
                    image.path.display(),
                    image.id,
                    image.names.join(" ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stead-testimages: {e}");
            ExitCode::FAILURE
        }
    }
}
