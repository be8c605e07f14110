//! The first user created becomes system admin, decided by apply in log order, so sign-ups that
//! race to be first (each node believing it has the first) still yield exactly one admin.

mod common;

use common::{create_user, id, TestDb};
use confab_storage::{Command, Outcome};

fn asking_for_admin(n: u64, name: &str) -> Command {
    let mut command = create_user(n, name, 1_000 + n);
    if let Command::CreateUser { roles, .. } = &mut command {
        *roles = "system_user system_admin".into();
    }
    command
}

fn roles_of(db: &TestDb, n: u64) -> String {
    db.engine
        .reader()
        .user(id(n))
        .expect("read user")
        .expect("user exists")
        .roles
}

#[test]
fn two_first_sign_ups_in_one_batch_make_one_admin() {
    let db = TestDb::new();
    let first = asking_for_admin(1, "alice");
    let second = asking_for_admin(2, "bob");
    let applied = db
        .engine
        .apply_batch(&[(1, Some(&first)), (2, Some(&second))], None)
        .expect("apply batch");
    for entry in &applied {
        assert!(matches!(entry.result, Ok(Outcome::UserCreated(_))));
    }
    assert_eq!(roles_of(&db, 1), "system_user system_admin");
    assert_eq!(roles_of(&db, 2), "system_user");
}

#[test]
fn the_first_user_is_admin_without_asking_and_later_ones_never_are() {
    let mut db = TestDb::new();
    db.ok(create_user(1, "alice", 1_000));
    assert_eq!(roles_of(&db, 1), "system_user system_admin");
    db.ok(asking_for_admin(2, "bob"));
    assert_eq!(roles_of(&db, 2), "system_user");
}

#[test]
fn a_refused_sign_up_does_not_take_the_first_place() {
    let db = TestDb::new();
    let refused = asking_for_admin(1, "x"); // a 1-character username is refused
    let accepted = create_user(2, "bob", 2_000);
    let applied = db
        .engine
        .apply_batch(&[(1, Some(&refused)), (2, Some(&accepted))], None)
        .expect("apply batch");
    assert!(applied[0].result.is_err(), "the short username is refused");
    assert_eq!(roles_of(&db, 2), "system_user system_admin");
}
