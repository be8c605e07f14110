"""Statuses through mattermostdriver's `status` endpoints: a user with a socket is online on every
node (get_user_statuses_by_id, get_user_status), update_user_status sets dnd and away by hand
(agreed on every node, announced to the user's own socket), another user may not change it."""
import secrets
import time

from mattermostdriver.exceptions import InvalidOrMissingParameters, NotEnoughPermissions

from test_flows import Events, driver, eventually, expect_error


def test_presence(servers):
    ports = servers.ports
    tag = secrets.token_hex(3)
    drivers, users = {}, {}
    for name, port in [('alice', ports[0]), ('bob', ports[-1])]:
        d = driver(port, f'{name}{tag}')
        eventually(f'sign up {name}', lambda: d.users.create_user(
            {'email': f'{name}-{tag}@example.com', 'username': f'{name}{tag}', 'password': 'Passw0rd-long-enough'}))
        eventually(f'log in {name}', d.login)
        drivers[name], users[name] = d, d.users.get_user('me')
    alice, bob = drivers['alice'], drivers['bob']
    alice_id, bob_id = users['alice']['id'], users['bob']['id']
    readers = []
    for port in ports:
        reader = driver(port, f'bob{tag}')
        eventually('reader login', reader.login)
        readers.append(reader)

    socket = Events(alice)
    try:
        socket.wait('hello', lambda m: m.get('event') == 'hello')
        for reader in readers:
            statuses = eventually('alice online', lambda: reader.status.get_user_statuses_by_id([alice_id, bob_id]),
                                  lambda got: {s['user_id']: s['status'] for s in got}.get(alice_id) == 'online')
            assert {s['user_id']: s['status'] for s in statuses}[bob_id] == 'offline'
        one = bob.status.get_user_status(alice_id)
        assert one['user_id'] == alice_id and one['manual'] is False and one['last_activity_at'] > 0

        end = int(time.time()) + 3600
        dnd = alice.status.update_user_status(alice_id, options={'user_id': alice_id, 'status': 'dnd', 'dnd_end_time': end})
        assert (dnd['status'], dnd['manual'], dnd['dnd_end_time']) == ('dnd', True, end)
        socket.wait('status_change dnd', lambda m: m.get('event') == 'status_change' and m['data']['status'] == 'dnd')
        for reader in readers:
            eventually('dnd everywhere', lambda: reader.status.get_user_status(alice_id),
                       lambda s: s['status'] == 'dnd' and s['dnd_end_time'] == end)

        alice.status.update_user_status(alice_id, options={'user_id': alice_id, 'status': 'away'})
        socket.wait('status_change away', lambda m: m.get('event') == 'status_change' and m['data']['status'] == 'away')
        for reader in readers:
            eventually('away everywhere', lambda: reader.status.get_user_status(alice_id),
                       lambda s: s['status'] == 'away' and s['manual'] is True)

        expect_error(NotEnoughPermissions, 403, 'api.context.permissions.app_error',
                     lambda: bob.status.update_user_status(alice_id, options={'user_id': alice_id, 'status': 'online'}))
        expect_error(InvalidOrMissingParameters, 400, 'api.context.invalid_param.app_error',
                     lambda: alice.status.update_user_status(alice_id, options={'user_id': alice_id, 'status': 'napping'}))
        back = alice.status.update_user_status(alice_id, options={'user_id': alice_id, 'status': 'online'})
        assert (back['status'], back['manual']) == ('online', False)
    finally:
        socket.close()
