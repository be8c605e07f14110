"""Changing an account through mattermostdriver's own endpoint methods: profile patch and
update, password change (other sessions end), sessions listed and revoked, deactivation."""
import secrets

from mattermostdriver.exceptions import InvalidOrMissingParameters, NoAccessTokenProvided

from test_flows import PASSWORD, driver, eventually, expect_error


def refused_with(fn):
    """The server error id ``fn`` was refused with, or None when it succeeded."""
    try:
        fn()
    except NoAccessTokenProvided as e:
        return e.__context__.response.json()['id']
    return None


def test_accounts(servers):
    ports = servers.ports
    port_a, port_b = ports[0], ports[1 % len(ports)]
    tag = secrets.token_hex(3)
    drivers, users = {}, {}
    for name, port in [('admin', port_a), ('bob', port_b)]:
        d = driver(port, f'{name}{tag}')
        eventually(f'sign up {name}', lambda: d.users.create_user(
            {'email': f'{name}-{tag}@example.com', 'username': f'{name}{tag}', 'password': PASSWORD}))
        eventually(f'log in {name}', d.login)
        drivers[name], users[name] = d, d.users.get_user('me')
    admin, bob = drivers['admin'], drivers['bob']
    bob_id = users['bob']['id']

    patched = bob.users.patch_user(bob_id, options={'nickname': f'bobby{tag}', 'position': 'builder'})
    assert patched['nickname'] == f'bobby{tag}'
    assert patched['username'] == f'bob{tag}'
    updated = bob.users.update_user(bob_id, options={'id': bob_id, 'first_name': 'Bob'})
    assert updated['first_name'] == 'Bob'
    assert updated['nickname'] == f'bobby{tag}'
    # The admin, on another node, reads the change from its replica.
    eventually('the patch on the other node', lambda: admin.users.get_user(bob_id),
               lambda u: u['first_name'] == 'Bob')

    # A second session for bob, then a password change from the first: the second ends.
    other = driver(port_a, f'bob{tag}')
    other.login()
    # The second login went through the other node: bob's node lists it once it has applied it.
    sessions = eventually('the second session on bob\'s node',
                          lambda: bob.users.get_user_sessions(bob_id), lambda s: len(s) == 2)
    assert all(s['token'] == '' for s in sessions)
    expect_error(InvalidOrMissingParameters, 400, 'api.user.update_password.incorrect.app_error',
                 lambda: bob.users.update_user_password(
                     bob_id, options={'current_password': 'wrong', 'new_password': 'a-new-passw0rd'}))
    bob.users.update_user_password(
        bob_id, options={'current_password': PASSWORD, 'new_password': 'a-new-passw0rd'})
    eventually('the other session ends', lambda: refused_with(lambda: other.users.get_user('me')),
               lambda refused: refused == 'api.context.session_expired.app_error')
    assert len(bob.users.get_user_sessions(bob_id)) == 1

    # Revoke the one left by its listed id.
    [mine] = bob.users.get_user_sessions(bob_id)
    bob.users.revoke_user_session(bob_id, options={'session_id': mine['id']})
    expect_error(NoAccessTokenProvided, 401, 'api.context.session_expired.app_error',
                 lambda: bob.users.get_user('me'))

    # Deactivated by the admin: bob cannot log in; reactivated: he can.
    admin.users.update_user_active_status(bob_id, options={'active': False})
    relogin = driver(port_b, f'bob{tag}')
    relogin.options['password'] = 'a-new-passw0rd'
    eventually('bob deactivated on his node', lambda: refused_with(relogin.login),
               lambda refused: refused == 'api.user.login.inactive.app_error')
    admin.users.update_user_active_status(bob_id, options={'active': True})
    eventually('bob reactivated on his node', relogin.login)
    assert relogin.users.get_user('me')['delete_at'] == 0
