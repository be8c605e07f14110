"""The flows of issue 5, scripted with mattermostdriver's own calls (Driver, its endpoint
objects, its generic ``driver.client`` calls for the endpoints 7.3.2 has no method for, and its
Websocket), against a single confab node and a 3-node cluster where each user talks to a
different node."""
import asyncio
import hashlib
import json
import secrets
import threading
import time

import pytest
from mattermostdriver import Driver
from mattermostdriver.exceptions import (InvalidOrMissingParameters, NoAccessTokenProvided,
                                         NotEnoughPermissions)
from mattermostdriver.websocket import Websocket

WAIT = 15.0
PASSWORD = 'Passw0rd-long-enough'


def driver(port, login_id=None):
    return Driver({
        'scheme': 'http', 'url': '127.0.0.1', 'port': port, 'basepath': '/api/v4',
        'login_id': login_id, 'password': PASSWORD,
        # Seconds of silence after which the driver sends a bare pong frame as a heartbeat.
        'timeout': 1,
        'request_timeout': 30,
    })


def eventually(what, fn, check=lambda v: True):
    """Retries ``fn`` until ``check`` holds: reads on another node come from its local replica."""
    deadline = time.monotonic() + WAIT
    last = None
    while True:
        try:
            value = fn()
            if check(value):
                return value
            last = f'condition not met: {str(value)[:400]}'
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = repr(e)
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}: {last}')
        time.sleep(0.05)


def expect_error(exc_type, status, error_id, fn):
    with pytest.raises(exc_type) as info:
        fn()
    # The driver raises its own exception class per status, with the server's message, from the
    # requests HTTPError that holds the response it read.
    assert isinstance(info.value.args[0], str) and info.value.args[0]
    body = info.value.__context__.response.json()
    assert info.value.__context__.response.status_code == status
    assert body['status_code'] == status
    assert body['id'] == error_id
    assert body['message'] == info.value.args[0]


class Events:
    """A user's mattermostdriver Websocket, run on its own event loop in a thread."""

    def __init__(self, drv):
        self.events = []
        self.cond = threading.Condition()
        self.loop = None
        self.conn = None
        self.driver = drv
        outer = self

        class RecordingWebsocket(Websocket):
            # init_websocket's websocket_cls hook: keep the connection to send the client's pings.
            async def _authenticate_websocket(self, websocket, event_handler):
                outer.conn = websocket
                return await super()._authenticate_websocket(websocket, event_handler)

        async def handler(message):
            msg = json.loads(message)
            with self.cond:
                self.events.append(msg)
                self.cond.notify_all()

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                drv.init_websocket(handler, websocket_cls=RecordingWebsocket)
            finally:
                # The driver's disconnect() only ends its loop; close the connection it left open.
                if self.conn is not None:
                    self.loop.run_until_complete(self.conn.close())
                self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def wait(self, what, pred):
        def find():
            return next((m for m in self.events if pred(m)), None)
        with self.cond:
            if not self.cond.wait_for(find, timeout=WAIT):
                raise AssertionError(f'no {what} within {WAIT}s; got {[m.get("event") for m in self.events]}')
            return find()

    def ping(self):
        """A WebSocket ping from the client's connection; returns once the pong arrived."""
        async def ping():
            waiter = await self.conn.ping()
            await asyncio.wait_for(waiter, WAIT)
        asyncio.run_coroutine_threadsafe(ping(), self.loop).result(WAIT + 1)

    def close(self):
        self.driver.disconnect()
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), 'websocket loop did not stop'


def event(name, **match):
    def pred(m):
        if m.get('event') != name:
            return False
        for key, (field, value) in match.items():
            if json.loads(m['data'][key])[field] != value:
                return False
        return True
    return pred


def test_flows(servers):
    ports = servers.ports
    port_a, port_b, port_c = ports[0], ports[1 % len(ports)], ports[2 % len(ports)]
    tag = secrets.token_hex(3)
    sockets = []
    try:
        # 1) sign up (the first user becomes admin), log in (token from the Token header), me.
        users, drivers = {}, {}
        for name, port in [('admin', port_a), ('bob', port_b), ('carol', port_c)]:
            d = driver(port, f'{name}{tag}')
            created = eventually(f'sign up {name}', lambda: d.users.create_user(
                {'email': f'{name}-{tag}@example.com', 'username': f'{name}{tag}', 'password': PASSWORD}))
            result = d.login()
            assert result['id'] == created['id']
            assert d.client.token
            me = d.users.get_user('me')
            assert me['id'] == created['id'] == d.client.userid
            users[name], drivers[name] = me, d
        admin, bob, carol = drivers['admin'], drivers['bob'], drivers['carol']
        if len(ports) == 3:
            # Node i+1 listens on ports[i]: whichever node leads, at least two users are on followers.
            leader = admin.cluster.get_cluster_status()['leader']
            followers = [name for name, port in [('admin', port_a), ('bob', port_b), ('carol', port_c)]
                         if port != ports[leader - 1]]
            assert len(followers) == 2, followers
        assert 'system_admin' in users['admin']['roles'].split()
        assert 'system_admin' not in users['bob']['roles'].split()

        # 2) team, members, channels, DM, GM, lookups.
        team = admin.teams.create_team({'name': f'team-{tag}', 'display_name': 'Team', 'type': 'O'})
        for name in ('bob', 'carol'):
            admin.teams.add_user_to_team(team['id'], {'team_id': team['id'], 'user_id': users[name]['id']})
        pub = admin.channels.create_channel({'team_id': team['id'], 'name': f'pub-{tag}', 'display_name': 'Public', 'type': 'O'})
        priv = admin.channels.create_channel({'team_id': team['id'], 'name': f'priv-{tag}', 'display_name': 'Private', 'type': 'P'})
        assert (pub['type'], priv['type']) == ('O', 'P')
        for name in ('bob', 'carol'):
            admin.channels.add_user(pub['id'], {'user_id': users[name]['id']})
        admin.channels.add_user(priv['id'], {'user_id': users['bob']['id']})
        dm = admin.channels.create_direct_message_channel([users['admin']['id'], users['bob']['id']])
        assert dm['type'] == 'D'
        assert dm['name'] == '__'.join(sorted([users['admin']['id'], users['bob']['id']]))
        gm_ids = sorted(users[n]['id'] for n in ('admin', 'bob', 'carol'))
        gm = admin.channels.create_group_message_channel(gm_ids)
        assert gm['type'] == 'G'
        assert gm['name'] == hashlib.sha1(''.join(gm_ids).encode()).hexdigest()
        assert eventually('channel by name', lambda: bob.channels.get_channel_by_name(team['id'], f'pub-{tag}'))['id'] == pub['id']
        assert eventually('channel by team name', lambda: carol.channels.get_channel_by_name_and_team_name(f'team-{tag}', f'pub-{tag}'))['id'] == pub['id']

        # 6) (setup) bob's own WebSocket on his node: challenge, hello at seq 0, ping answered.
        bob_ws = Events(bob)
        sockets.append(bob_ws)
        hello = bob_ws.wait('hello', lambda m: m.get('event') == 'hello')
        assert hello['seq'] == 0 and hello['data']['connection_id']
        bob_ws.wait('challenge reply', lambda m: m.get('seq_reply') == 1 and m.get('status') == 'OK')
        bob_ws.ping()

        # 3) post, reply, edit, react, delete; paging; thread; posts around unread.
        root = bob.posts.create_post({'channel_id': pub['id'], 'message': 'root by bob'})
        posted = bob_ws.wait('posted', event('posted', post=('id', root['id'])))
        assert posted['data']['channel_name'] == f'pub-{tag}'
        reply = eventually('admin replies', lambda: admin.posts.create_post(
            {'channel_id': pub['id'], 'root_id': root['id'], 'message': 'reply by admin'}))
        assert reply['root_id'] == root['id']
        bob_ws.wait('posted (reply)', event('posted', post=('id', reply['id'])))
        updated = bob_ws.wait('thread_updated', event('thread_updated', thread=('id', root['id'])))
        assert json.loads(updated['data']['thread'])['reply_count'] == 1

        edited = admin.posts.patch_post(reply['id'], {'message': 'reply by admin (edited)'})
        assert edited['message'] == 'reply by admin (edited)' and edited['edit_at'] > 0
        bob_ws.wait('post_edited', event('post_edited', post=('message', 'reply by admin (edited)')))

        reaction = admin.reactions.create_reaction({'user_id': users['admin']['id'], 'post_id': root['id'], 'emoji_name': 'thumbsup'})
        assert reaction['emoji_name'] == 'thumbsup'
        bob_ws.wait('reaction_added', event('reaction_added', reaction=('post_id', root['id'])))

        doomed = admin.posts.create_post({'channel_id': pub['id'], 'message': 'to be deleted'})
        assert admin.posts.delete_post(doomed['id'])['status'] == 'OK'
        bob_ws.wait('post_deleted', event('post_deleted', post=('id', doomed['id'])))

        more = [carol.posts.create_post({'channel_id': pub['id'], 'message': f'carol {i}'}) for i in range(5)]
        ids = [p['id'] for p in more]
        page0 = eventually('carol posts on A', lambda: admin.posts.get_posts_for_channel(pub['id'], params={'page': 0, 'per_page': 3}),
                           lambda l: l['order'][0] == ids[4])
        assert page0['order'] == [ids[4], ids[3], ids[2]]
        page1 = admin.posts.get_posts_for_channel(pub['id'], params={'page': 1, 'per_page': 3})
        assert page1['order'][:2] == [ids[1], ids[0]]
        assert doomed['id'] not in page0['order'] + page1['order']
        since = admin.posts.get_posts_for_channel(pub['id'], params={'since': more[1]['create_at']})
        assert set(ids[2:]) <= set(since['order']) and ids[0] not in since['order']
        before = admin.posts.get_posts_for_channel(pub['id'], params={'before': ids[2], 'per_page': 2})
        assert before['order'] == [ids[1], ids[0]]
        after = admin.posts.get_posts_for_channel(pub['id'], params={'after': ids[2], 'per_page': 2})
        assert after['order'] == [ids[4], ids[3]]

        thread = eventually('thread on B', lambda: bob.posts.get_thread(root['id']), lambda t: len(t['order']) == 2)
        assert set(thread['posts']) == {root['id'], reply['id']}
        around = eventually('posts around unread', lambda: bob.posts.get_unread_posts_for_channel(
            users['bob']['id'], pub['id'], params={'limit_before': 30, 'limit_after': 30}), lambda l: ids[4] in l['order'])
        assert root['id'] in around['order']

        # 5) channel unread counts before viewing: the ChannelUnread call and the web app's
        # total_msg_count − member msg_count agree.
        unread = eventually('unread on B', lambda: bob.channels.get_unread_messages(users['bob']['id'], pub['id']),
                            lambda u: u['msg_count'] >= 6)
        channel = bob.channels.get_channel(pub['id'])
        member = bob.channels.get_channel_member(pub['id'], users['bob']['id'])
        assert channel['total_msg_count'] - member['msg_count'] == unread['msg_count']

        # 4) CRT as bob, through the driver's generic calls (7.3.2 has no thread methods).
        threads_path = f"/users/{users['bob']['id']}/teams/{team['id']}/threads"
        threads = eventually('bob threads', lambda: bob.client.get(threads_path), lambda t: t['total'] >= 1)
        assert threads['total'] == 1 and threads['total_unread_threads'] == 1
        assert threads['threads'][0]['id'] == root['id'] and threads['threads'][0]['unread_replies'] == 1
        assert [t['id'] for t in bob.client.get(threads_path, params={'unread': 'true'})['threads']] == [root['id']]
        read = bob.client.put(f"{threads_path}/{root['id']}/read/{int(time.time() * 1000)}")
        assert read['unread_replies'] == 0
        none_unread = bob.client.get(threads_path, params={'unread': 'true'})
        assert none_unread['threads'] == [] and none_unread['total_unread_threads'] == 0
        set_unread = bob.client.post(f"{threads_path}/{root['id']}/set_unread/{reply['id']}")
        assert set_unread['unread_replies'] == 1
        bob.client.delete(f"{threads_path}/{root['id']}/following")
        assert root['id'] not in [t['id'] for t in bob.client.get(threads_path)['threads']]
        bob.client.put(f"{threads_path}/{root['id']}/following")
        assert root['id'] in [t['id'] for t in bob.client.get(threads_path)['threads']]
        bob.client.put(f'{threads_path}/read')
        assert bob.client.get(threads_path)['total_unread_threads'] == 0

        # 5) and 6): bob views the channel from a second session on another node; his socket
        # is told, and the unread count is 0 both ways.
        bob2 = driver(port_c, f'bob{tag}')
        bob2.login()
        viewed = bob2.channels.view_channel('me', {'channel_id': pub['id'], 'prev_channel_id': ''})
        assert viewed['status'] == 'OK'
        mcv = bob_ws.wait('multiple_channels_viewed', lambda m: m.get('event') == 'multiple_channels_viewed'
                          and pub['id'] in m['data'].get('channel_times', {}))
        assert mcv['data']['channel_times'][pub['id']] > 0
        eventually('viewed on B', lambda: bob.channels.get_unread_messages(users['bob']['id'], pub['id']),
                   lambda u: u['msg_count'] == 0)
        channel = bob.channels.get_channel(pub['id'])
        member = bob.channels.get_channel_member(pub['id'], users['bob']['id'])
        assert channel['total_msg_count'] - member['msg_count'] == 0

        # The event stream is contiguous and the connection alive (driver heartbeats included).
        seqs = [m['seq'] for m in bob_ws.events if 'event' in m]
        assert seqs == list(range(len(seqs)))
        bob_ws.ping()
        assert bob_ws.thread.is_alive()

        # 7) refusals.
        stranger = Driver({'scheme': 'http', 'url': '127.0.0.1', 'port': port_c, 'basepath': '/api/v4',
                           'login_id': f'bob{tag}', 'password': 'wrong-password'})
        expect_error(NoAccessTokenProvided, 401, 'api.user.login.invalid_credentials_email_username', stranger.login)
        expect_error(NotEnoughPermissions, 403, 'api.context.permissions.app_error',
                     lambda: carol.posts.get_posts_for_channel(priv['id']))
        expect_error(InvalidOrMissingParameters, 400, 'model.post.is_valid.message_length.app_error',
                     lambda: bob.posts.create_post({'channel_id': pub['id'], 'message': 'x' * 16384}))
    finally:
        for s in sockets:
            s.close()
