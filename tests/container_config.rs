//! A container's recorded config (what `docker create` sends) is what commit
//! uses for `container_config`, `created_by` and the merge.

mod common;
use common::*;

#[tokio::test]
async fn commit_uses_the_recorded_container_config() {
    let (_d, svc) = service();
    load(&svc, "chain-tagged.tar").await;
    let cfg = strata::ContainerConfig {
        attach_stdout: true,
        attach_stderr: true,
        cmd: Some(vec!["sh".into(), "-c".into(), "echo a>/y".into()]),
        image: "dev/chain:1".into(),
        labels: Some(Default::default()),
        ..Default::default()
    };
    let id = svc
        .create_container_with_config("dev/chain:1", Some("c1"), Some(cfg))
        .await
        .unwrap();
    let image = svc
        .commit_image(
            "c1",
            Some("committed"),
            Some("v1"),
            "me <me@x>",
            "hello & bye",
            &["ENV A=1".to_string(), "CMD echo hi".to_string()],
        )
        .await
        .unwrap();
    let inspect = svc.lookup_image(&image).await.unwrap();
    let cc: serde_json::Value = serde_json::from_str(inspect.container_config.get()).unwrap();
    assert_eq!(cc["Hostname"], id[..12]);
    assert_eq!(cc["Cmd"], serde_json::json!(["sh", "-c", "echo a>/y"]));
    assert_eq!(cc["Image"], "dev/chain:1");
    // Merged from the image at create time (dockerd's mergeAndVerifyConfig).
    assert_eq!(
        cc["Env"],
        serde_json::json!(["PATH=/bin", "GREETING=hello"])
    );
    let config: serde_json::Value =
        serde_json::from_str(inspect.config.as_ref().unwrap().get()).unwrap();
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "echo hi"])
    );
    assert_eq!(
        config["Env"],
        serde_json::json!(["PATH=/bin", "GREETING=hello", "A=1"])
    );
    let history = svc.image_history(&image).await.unwrap();
    assert_eq!(history[0].created_by, "sh -c echo a>/y");
    assert_eq!(history[0].comment, "hello & bye");
    assert_eq!(inspect.author, "me <me@x>");
    assert_eq!(inspect.container, id);
    assert_verified(&svc);
    // Removing the container drops its recorded config with it.
    svc.remove_container("c1").await.unwrap();
    assert_verified(&svc);
}
