//! The busybox image: Debian's static busybox with a link per applet, `Cmd ["sh"]`.

use crate::docker_save::RunConfig;
use crate::error::Result;
use crate::images::base::{PATH_ENV, add_busybox, root_layout};
use crate::tree::Tree;

pub(crate) fn plan() -> Result<(Tree, RunConfig)> {
    let mut tree = root_layout(&[])?;
    add_busybox(&mut tree)?;
    let run = RunConfig {
        cmd: vec!["sh".to_owned()],
        env: vec![PATH_ENV.to_owned()],
        ..RunConfig::default()
    };
    Ok((tree, run))
}
