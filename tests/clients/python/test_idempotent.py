"""Idempotent posts with mattermostdriver: a post sent again with the same ``pending_post_id``
(through another node, in the cluster) is answered with the original post, stored once and
announced once on the WebSocket."""
import json
import secrets
import time

from test_flows import PASSWORD, Events, driver, event, eventually


def test_a_retried_post_is_made_once(servers):
    ports = servers.ports
    port_a, port_b = ports[0], ports[1 % len(ports)]
    tag = secrets.token_hex(3)
    alice = driver(port_a, f'alice{tag}')
    eventually('sign up', lambda: alice.users.create_user(
        {'email': f'alice-{tag}@example.com', 'username': f'alice{tag}', 'password': PASSWORD}))
    me = alice.login()
    team = alice.teams.create_team({'name': f'idem-{tag}', 'display_name': 'Idem', 'type': 'O'})
    channel = alice.channels.get_channel_by_name(team['id'], 'town-square')
    # The same session on the other node, as a client whose retry lands there.
    again = driver(port_b)
    again.client.token = alice.client.token

    socket = Events(alice)
    try:
        socket.wait('hello', lambda m: m.get('event') == 'hello')
        pending = f"{me['id']}:{int(time.time() * 1000)}"
        draft = {'channel_id': channel['id'], 'message': 'sent twice', 'pending_post_id': pending}
        first = alice.posts.create_post(dict(draft))
        retry = again.posts.create_post(dict(draft))
        assert (retry['id'], retry['create_at']) == (first['id'], first['create_at'])
        assert first['pending_post_id'] == retry['pending_post_id'] == pending

        marker = alice.posts.create_post({'channel_id': channel['id'], 'message': 'marker'})
        socket.wait('posted (marker)', event('posted', post=('id', marker['id'])))
        posted = [json.loads(m['data']['post']) for m in socket.events if m.get('event') == 'posted']
        assert [p['id'] for p in posted] == [first['id'], marker['id']], 'one posted event per post'
        assert posted[0]['pending_post_id'] == pending

        for port in ports:
            reader = driver(port)
            reader.client.token = alice.client.token
            page = eventually(f'the marker on {port}',
                              lambda: reader.posts.get_posts_for_channel(channel['id'], params={'per_page': 50}),
                              lambda p: marker['id'] in p['order'])
            assert [page['posts'][i]['message'] for i in page['order']] == ['marker', 'sent twice']
    finally:
        socket.close()
