"""Running teams and channels, profile pictures and custom emoji with mattermostdriver's own
endpoint methods (``teams.patch_team``, ``update_team``, ``get_invite_info_for_team``,
``add_user_to_team_from_invite``, ``update_team_member_roles``,
``update_scheme_derived_roles_of_team_member``, ``channels.convert_channel``,
``update_channel_roles``, ``update_scheme_derived_roles_of_channel_member``,
``users.get_user_profile_image``, ``set_user_profile_image``, ``emoji.*``) and its generic
``driver.client`` calls where 7.3.2 has no method (regenerating the invite id, channel privacy,
the default picture, resetting a picture, emoji by names) or its method cannot express the
request (an emoji created for someone else). Each with its refusals and WebSocket events;
written on one node, read and heard on another of a 3-node cluster."""
import binascii
import json
import secrets
import struct
import zlib

import pytest
from mattermostdriver.exceptions import (InvalidOrMissingParameters, NotEnoughPermissions,
                                         ResourceNotFound)

from test_flows import PASSWORD, Events, driver, eventually

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
ERRORS = {400: InvalidOrMissingParameters, 403: NotEnoughPermissions, 404: ResourceNotFound}
PERMISSIONS = 'api.context.permissions.app_error'
INVALID_PARAM = 'api.context.invalid_param.app_error'


# ---- PNG files, built and read with zlib ----

def png(w, h, rgb):
    """A ``w``×``h`` PNG of one colour (8-bit RGB, no filter)."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack('>I', len(data)) + body + struct.pack('>I', binascii.crc32(body))
    row = b'\x00' + bytes(rgb) * w
    header = struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(row * h)) + chunk(b'IEND', b'')


def png_size(data):
    """Width and height from a PNG's IHDR, after checking the signature."""
    assert data[:8] == PNG_SIGNATURE, data[:16]
    assert data[12:16] == b'IHDR'
    return struct.unpack('>II', data[16:24])


def png_pixel(data, x, y):
    """The RGB of pixel (x, y) of an 8-bit non-interlaced grey/RGB/RGBA PNG."""
    w, _ = png_size(data)
    depth, colour, interlace = data[24], data[25], data[28]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    assert depth == 8 and channels and interlace == 0, (depth, colour, interlace)
    idat, at = b'', 8
    while at < len(data):
        (length,) = struct.unpack('>I', data[at:at + 4])
        if data[at + 4:at + 8] == b'IDAT':
            idat += data[at + 8:at + 8 + length]
        at += 12 + length
    raw = zlib.decompress(idat)
    stride = w * channels
    previous = bytearray(stride)
    for row in range(y + 1):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                add = a
            elif kind == 2:
                add = b
            elif kind == 3:
                add = (a + b) >> 1
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                add = a if pa <= pb and pa <= pc else b if pb <= pc else c
            else:
                add = 0
            line[i] = (line[i] + add) & 0xff
        previous = line
    px = previous[x * channels:(x + 1) * channels]
    return (px[0], px[0], px[0]) if channels < 3 else tuple(px[:3])


# ---- shared steps ----

def refused(status, fn, error_id=None):
    """``fn`` fails with the driver's exception for ``status`` and a Mattermost-shaped body."""
    with pytest.raises(ERRORS[status]) as info:
        fn()
    response = info.value.__context__.response
    assert response.status_code == status
    body = response.json()
    assert body['status_code'] == status
    if error_id is not None:
        assert body['id'] == error_id, body


def status_of(fn):
    """The HTTP status a driver call ends with (200 when it succeeds)."""
    try:
        fn()
        return 200
    except tuple(ERRORS.values()) as e:
        return e.__context__.response.status_code


def sign_up(port, name, tag):
    d = driver(port, f'{name}{tag}')
    eventually(f'sign up {name}', lambda: d.users.create_user(
        {'email': f'{name}-{tag}@example.com', 'username': f'{name}{tag}', 'password': PASSWORD}))
    eventually(f'log in {name}', d.login)
    return d, d.users.get_user('me')


def on(port, d):
    """The same session on another node."""
    other = driver(port)
    other.client.token = d.client.token
    other.client.userid = d.client.userid
    return other


def connect(d):
    ws = Events(d)
    ws.wait('hello', lambda m: m.get('event') == 'hello')
    return ws


def ports_of(servers):
    ports = servers.ports
    return ports[0], ports[1 % len(ports)]


def inner(event, key):
    return json.loads(event['data'][key])


def root_of(port_a):
    """The first user of a fresh cluster: its system admin."""
    root, me = sign_up(port_a, 'root', secrets.token_hex(3))
    assert 'system_admin' in me['roles'].split()
    return root


# ---- 1. teams: edits, the invite link, team admins ----

def test_team_admin(servers):
    port_a, port_b = ports_of(servers)
    root_of(port_a)
    tag = secrets.token_hex(3)
    bob, b = sign_up(port_a, 'bob', tag)  # creates the team: its team admin
    carol, c = sign_up(port_b, 'carol', tag)  # a member
    dave, d = sign_up(port_b, 'dave', tag)  # an outsider
    erin, _ = sign_up(port_b, 'erin', tag)
    carol_a = on(port_a, carol)

    team = bob.teams.create_team({'name': f'adm{tag}', 'display_name': 'Admins', 'type': 'O'})
    secret = team['invite_id']
    assert len(secret) == 26
    bob.teams.add_user_to_team(team['id'], {'team_id': team['id'], 'user_id': c['id']})
    listed = eventually('the team listed to an outsider', dave.teams.get_teams,
                        lambda teams: any(t['id'] == team['id'] for t in teams))
    assert next(t for t in listed if t['id'] == team['id'])['invite_id'] == ''
    assert dave.teams.get_team(team['id'])['invite_id'] == '', 'nor when read by id'

    ws = connect(carol)
    try:
        patched = bob.teams.patch_team(team['id'], {
            'display_name': 'Admins Inc', 'description': 'we ship', 'company_name': 'Ship Co',
            'allowed_domains': '', 'allow_open_invite': True})
        assert patched['id'] == team['id']
        assert patched['name'] == f'adm{tag}'
        assert (patched['display_name'], patched['description'], patched['company_name']) == \
            ('Admins Inc', 'we ship', 'Ship Co')
        assert patched['allow_open_invite'] is True
        assert patched['invite_id'] == secret
        event = ws.wait('update_team', lambda m: m.get('event') == 'update_team'
                        and inner(m, 'team')['display_name'] == 'Admins Inc')
        sent = inner(event, 'team')
        assert sent['description'] == 'we ship'
        assert sent['invite_id'] == '', 'events carry the team sanitized'
        assert event['broadcast']['team_id'] == team['id']
        read = eventually('the patch read elsewhere', lambda: carol.teams.get_team(team['id']),
                          lambda t: t['display_name'] == 'Admins Inc')
        assert read['company_name'] == 'Ship Co'

        # Refusals.
        refused(403, lambda: carol.teams.patch_team(team['id'], {'display_name': "Carol's"}), PERMISSIONS)
        refused(404, lambda: bob.teams.patch_team('a' * 26, {'display_name': 'X'}))
        refused(400, lambda: bob.teams.patch_team(team['id'], {'description': 'd' * 256}))
        refused(400, lambda: bob.teams.update_team(team['id'], {**patched, 'id': c['id']}))

        updated = bob.teams.update_team(team['id'], {'id': team['id'], 'display_name': 'Admins',
                                                     'company_name': 'Bob Inc'})
        assert (updated['display_name'], updated['company_name']) == ('Admins', 'Bob Inc')
        assert updated['description'] == 'we ship', 'fields not given are kept'
        eventually('the update read elsewhere', lambda: carol.teams.get_team(team['id']),
                   lambda t: t['company_name'] == 'Bob Inc')

        # The invite link, read without a session on another node, joined by the outsider.
        anonymous = driver(port_b)
        info = eventually('invite info', lambda: anonymous.teams.get_invite_info_for_team(secret),
                          lambda i: i['display_name'] == 'Admins')
        assert info == {'id': team['id'], 'name': f'adm{tag}', 'display_name': 'Admins',
                        'description': 'we ship'}
        joined = dave.teams.add_user_to_team_from_invite({'invite_id': secret})
        assert (joined['team_id'], joined['user_id']) == (team['id'], d['id'])
        eventually('dave is a member', lambda: dave.teams.get_team_member(team['id'], d['id']),
                   lambda m: m['delete_at'] == 0)

        # 7.3.2 has no regenerate_invite_id: the generic client.post.
        regenerated = bob.client.post(f"/teams/{team['id']}/regenerate_invite_id")
        new_secret = regenerated['invite_id']
        assert regenerated['id'] == team['id']
        assert len(new_secret) == 26 and new_secret != secret
        eventually('the old link is gone elsewhere',
                   lambda: status_of(lambda: anonymous.teams.get_invite_info_for_team(secret)),
                   lambda s: s == 404)
        refused(404, lambda: erin.teams.add_user_to_team_from_invite({'invite_id': secret}))
        assert eventually('the new link elsewhere',
                          lambda: anonymous.teams.get_invite_info_for_team(new_secret))['id'] == team['id']
        # The driver answers only the body; its make_request shows the 201.
        response = erin.client.make_request('post', '/teams/members/invite', params={'invite_id': new_secret})
        assert response.status_code == 201
        assert response.json()['team_id'] == team['id']

        # Team admins.
        refused(403, lambda: carol.teams.update_team_member_roles(
            team['id'], c['id'], {'roles': 'team_user team_admin'}), PERMISSIONS)
        refused(400, lambda: bob.teams.update_team_member_roles(
            team['id'], c['id'], {'roles': 'team_user system_admin'}), INVALID_PARAM)
        assert bob.teams.update_team_member_roles(
            team['id'], c['id'], {'roles': 'team_user team_admin'}) == {'status': 'OK'}
        event = ws.wait('memberrole_updated (admin)', lambda m: m.get('event') == 'memberrole_updated'
                        and inner(m, 'member')['scheme_admin'] is True)
        member = inner(event, 'member')
        assert (member['team_id'], member['user_id']) == (team['id'], c['id'])
        got = eventually('carol is team admin elsewhere', lambda: carol_a.teams.get_team_member(team['id'], c['id']),
                         lambda m: m['scheme_admin'] is True)
        assert got['roles'] == 'team_user team_admin'
        assert carol.teams.patch_team(team['id'], {'description': 'carol was here'})['description'] == 'carol was here'

        assert bob.teams.update_scheme_derived_roles_of_team_member(
            team['id'], c['id'], {'scheme_admin': False, 'scheme_user': True}) == {'status': 'OK'}
        event = ws.wait('memberrole_updated (user)', lambda m: m.get('event') == 'memberrole_updated'
                        and inner(m, 'member')['scheme_admin'] is False)
        assert inner(event, 'member')['scheme_user'] is True
        eventually('carol is a plain member elsewhere', lambda: carol_a.teams.get_team_member(team['id'], c['id']),
                   lambda m: m['scheme_admin'] is False and m['roles'] == 'team_user')
        eventually('carol may not patch again',
                   lambda: status_of(lambda: carol.teams.patch_team(team['id'], {'description': 'x'})),
                   lambda s: s == 403)
        refused(403, lambda: dave.teams.update_scheme_derived_roles_of_team_member(
            team['id'], d['id'], {'scheme_admin': True, 'scheme_user': True}), PERMISSIONS)
        assert 'system_admin' not in b['roles'].split()
    finally:
        ws.close()


# ---- 2. channels: privacy and channel admins ----

def test_channel_admin(servers):
    port_a, port_b = ports_of(servers)
    root_of(port_a)
    tag = secrets.token_hex(3)
    bob, b = sign_up(port_a, 'bob', tag)  # runs the team
    carol, c = sign_up(port_a, 'carol', tag)  # creates the channel
    dave, d = sign_up(port_b, 'dave', tag)  # a plain member of it
    bob_b = on(port_b, bob)
    team = bob.teams.create_team({'name': f'chan{tag}', 'display_name': 'Chans', 'type': 'O'})
    for user in (c, d):
        bob.teams.add_user_to_team(team['id'], {'team_id': team['id'], 'user_id': user['id']})
    town = bob.channels.get_channel_by_name(team['id'], 'town-square')
    channel = carol.channels.create_channel({'team_id': team['id'], 'name': f'plans{tag}',
                                             'display_name': 'Plans', 'type': 'O'})
    assert carol.channels.get_channel_member(channel['id'], c['id'])['scheme_admin'] is True
    carol.channels.add_user(channel['id'], {'user_id': d['id']})
    eventually('dave in the channel elsewhere', lambda: dave.channels.get_channel_member(channel['id'], d['id']),
               lambda m: m['scheme_admin'] is False)

    # 7.3.2 has no update_channel_privacy: the generic client.put.
    def privacy(drv, channel_id, value):
        return drv.client.put(f'/channels/{channel_id}/privacy', options={'privacy': value})

    dave_ws = connect(dave)
    bob_ws = connect(bob_b)  # in the team, not in the channel
    try:
        refused(403, lambda: privacy(dave, channel['id'], 'P'), PERMISSIONS)
        refused(400, lambda: privacy(carol, channel['id'], 'D'), INVALID_PARAM)

        made = privacy(carol, channel['id'], 'P')
        assert (made['id'], made['type']) == (channel['id'], 'P')
        updated = dave_ws.wait('channel_updated', lambda m: m.get('event') == 'channel_updated'
                               and inner(m, 'channel')['type'] == 'P')
        assert inner(updated, 'channel')['id'] == channel['id']
        assert updated['broadcast']['channel_id'] == channel['id']
        converted = bob_ws.wait('channel_converted', lambda m: m.get('event') == 'channel_converted'
                                and m['data']['channel_id'] == channel['id'])
        assert converted['broadcast']['team_id'] == team['id']
        eventually('private elsewhere', lambda: dave.channels.get_channel(channel['id']), lambda ch: ch['type'] == 'P')
        eventually('gone from the public list elsewhere', lambda: bob_b.channels.get_public_channels(team['id']),
                   lambda lst: all(ch['id'] != channel['id'] for ch in lst))

        # Already private; the team's default channel stays open.
        refused(400, lambda: carol.channels.convert_channel(channel['id']))
        refused(400, lambda: privacy(bob, town['id'], 'P'))
        refused(400, lambda: bob.channels.convert_channel(town['id']))

        # The team admin runs every channel of the team.
        assert privacy(bob, channel['id'], 'O')['type'] == 'O'
        eventually('open again elsewhere', lambda: dave.channels.get_channel(channel['id']),
                   lambda ch: ch['type'] == 'O')

        # Channel admins.
        refused(403, lambda: dave.channels.update_channel_roles(
            channel['id'], d['id'], {'roles': 'channel_user channel_admin'}), PERMISSIONS)
        refused(400, lambda: carol.channels.update_channel_roles(
            channel['id'], d['id'], {'roles': 'channel_user team_admin'}), INVALID_PARAM)
        assert carol.channels.update_channel_roles(
            channel['id'], d['id'], {'roles': 'channel_user channel_admin'}) == {'status': 'OK'}
        event = dave_ws.wait('channel_member_updated (admin)', lambda m: m.get('event') == 'channel_member_updated'
                             and inner(m, 'channelMember')['scheme_admin'] is True)
        member = inner(event, 'channelMember')
        assert (member['channel_id'], member['user_id']) == (channel['id'], d['id'])
        eventually('dave is channel admin elsewhere', lambda: dave.channels.get_channel_member(channel['id'], d['id']),
                   lambda m: m['scheme_admin'] is True and 'channel_admin' in m['roles'].split())
        converted = eventually('dave converts', lambda: dave.channels.convert_channel(channel['id']))
        assert converted['type'] == 'P'

        assert carol.channels.update_scheme_derived_roles_of_channel_member(
            channel['id'], d['id'], {'scheme_admin': False, 'scheme_user': True}) == {'status': 'OK'}
        event = dave_ws.wait('channel_member_updated (user)', lambda m: m.get('event') == 'channel_member_updated'
                             and inner(m, 'channelMember')['scheme_admin'] is False)
        assert inner(event, 'channelMember')['scheme_user'] is True
        eventually('dave is a plain member elsewhere', lambda: dave.channels.get_channel_member(channel['id'], d['id']),
                   lambda m: m['scheme_admin'] is False)
        eventually('dave may not change privacy', lambda: status_of(lambda: privacy(dave, channel['id'], 'O')),
                   lambda s: s == 403)
        refused(403, lambda: dave.channels.update_scheme_derived_roles_of_channel_member(
            channel['id'], c['id'], {'scheme_admin': False, 'scheme_user': True}), PERMISSIONS)
        assert 'system_admin' not in b['roles'].split()
    finally:
        dave_ws.close()
        bob_ws.close()


# ---- 3. profile pictures ----

def test_profile_images(servers):
    port_a, port_b = ports_of(servers)
    root = root_of(port_a)
    tag = secrets.token_hex(3)
    bob, b = sign_up(port_a, 'bob', tag)
    carol, c = sign_up(port_b, 'carol', tag)
    bob_b = on(port_b, bob)
    team = bob.teams.create_team({'name': f'pic{tag}', 'display_name': 'Pics', 'type': 'O'})
    bob.teams.add_user_to_team(team['id'], {'team_id': team['id'], 'user_id': c['id']})

    def image(data, name='me.png'):
        return {'image': (name, data, 'image/png')}

    # The driver answers a non-JSON body as the requests response.
    generated = eventually('the generated picture elsewhere', lambda: carol.users.get_user_profile_image(b['id']),
                           lambda r: r.status_code == 200)
    assert generated.headers['Content-Type'] == 'image/png'
    assert png_size(generated.content) == (128, 128)
    assert bob.users.get_user_profile_image(b['id']).content == generated.content
    # 7.3.2 has no method for /image/default: the generic client.get.
    default = carol.client.get(f"/users/{b['id']}/image/default")
    assert default.status_code == 200 and default.headers['Content-Type'] == 'image/png'
    assert default.content == generated.content
    refused(404, lambda: carol.users.get_user_profile_image('a' * 26))

    ws = connect(carol)
    try:
        assert bob.users.set_user_profile_image(b['id'], image(png(300, 200, (200, 30, 30)))) == {'status': 'OK'}
        event = ws.wait('user_updated', lambda m: m.get('event') == 'user_updated'
                        and m['data']['user']['id'] == b['id'] and m['data']['user']['last_picture_update'] > 0)
        stamp = event['data']['user']['last_picture_update']
        me = eventually('the stamp elsewhere', lambda: bob_b.users.get_user('me'),
                        lambda u: u['last_picture_update'] > 0)
        assert me['last_picture_update'] == stamp
        uploaded = eventually('the photo elsewhere', lambda: carol.users.get_user_profile_image(b['id']),
                              lambda r: r.status_code == 200 and r.content != generated.content)
        assert uploaded.headers['Content-Type'] == 'image/png'
        assert png_size(uploaded.content) == (128, 128)
        r, g, _ = png_pixel(uploaded.content, 64, 64)
        assert r > 150 and g < 100, (r, g)

        refused(400, lambda: bob.users.set_user_profile_image(b['id'], image(b'plain text', 'me.txt')))
        refused(403, lambda: carol.users.set_user_profile_image(b['id'], image(png(10, 10, (0, 0, 0)))), PERMISSIONS)
        # 7.3.2 has no method to reset a picture: the generic client.delete.
        refused(403, lambda: carol.client.delete(f"/users/{b['id']}/image"), PERMISSIONS)

        assert bob.client.delete(f"/users/{b['id']}/image") == {'status': 'OK'}
        ws.wait('user_updated (reset)', lambda m: m.get('event') == 'user_updated'
                and m['data']['user']['id'] == b['id'] and m['data']['user']['last_picture_update'] < 0)
        eventually('the stamp negative elsewhere', lambda: bob_b.users.get_user('me'),
                   lambda u: u['last_picture_update'] < 0)
        eventually('the generated picture back elsewhere', lambda: carol.users.get_user_profile_image(b['id']),
                   lambda resp: resp.content == generated.content)

        # A system admin may set anyone's picture.
        assert root.users.set_user_profile_image(b['id'], image(png(64, 64, (20, 200, 20)))) == {'status': 'OK'}
        eventually('the admin set it', lambda: bob_b.users.get_user('me'), lambda u: u['last_picture_update'] > 0)
    finally:
        ws.close()


# ---- 4. custom emoji ----

def test_custom_emoji(servers):
    port_a, port_b = ports_of(servers)
    root = root_of(port_a)
    tag = secrets.token_hex(3)
    bob, b = sign_up(port_a, 'bob', tag)
    carol, c = sign_up(port_b, 'carol', tag)
    team = bob.teams.create_team({'name': f'emo{tag}', 'display_name': 'Emoji', 'type': 'O'})
    bob.teams.add_user_to_team(team['id'], {'team_id': team['id'], 'user_id': c['id']})
    town = bob.channels.get_channel_by_name(team['id'], 'town-square')
    # Unique per run, not standard shortcodes; the second is created later but sorts first.
    first, second = f'ship_{tag}', f'anchor_{tag}'

    def image(w, h):
        return {'image': ('e.png', png(w, h, (1, 2, 3)), 'image/png')}

    def names(lst):
        return [e['name'] for e in lst]

    carol_ws = connect(carol)
    bob_ws = connect(bob)
    root_ws = connect(on(port_b, root))  # shares no team with them
    try:
        # create_custom_emoji sends the logged-in user as creator_id.
        ship = bob.emoji.create_custom_emoji(first, image(256, 256))
        assert (ship['name'], ship['creator_id'], len(ship['id'])) == (first, b['id'], 26)
        added = carol_ws.wait('emoji_added', lambda m: m.get('event') == 'emoji_added'
                              and inner(m, 'emoji')['name'] == first)
        assert inner(added, 'emoji')['id'] == ship['id']
        to_all = root_ws.wait('emoji_added (root)', lambda m: m.get('event') == 'emoji_added'
                              and inner(m, 'emoji')['name'] == first)
        assert inner(to_all, 'emoji')['creator_id'] == b['id']

        assert eventually('by name elsewhere', lambda: carol.emoji.get_custom_emoji_by_name(first))['id'] == ship['id']
        assert carol.emoji.get_custom_emoji(ship['id'])['name'] == first
        picture = carol.emoji.get_custom_emoji_image(ship['id'])
        assert picture.status_code == 200 and picture.headers['Content-Type'] == 'image/png'
        assert png_size(picture.content) == (128, 128)

        anchor = carol.emoji.create_custom_emoji(second, image(16, 16))
        assert anchor['creator_id'] == c['id']
        small = eventually('the small image elsewhere', lambda: bob.emoji.get_custom_emoji_image(anchor['id']),
                           lambda r: r.status_code == 200)
        assert png_size(small.content) == (16, 16)
        assert names(eventually('both listed', lambda: bob.emoji.get_emoji_list({'sort': 'name', 'per_page': 100}),
                                lambda lst: len(lst) == 2)) == [second, first]
        assert names(bob.emoji.get_emoji_list({'page': 0, 'per_page': 1})) == [first]
        assert names(bob.emoji.get_emoji_list({'page': 1, 'per_page': 1})) == [second]
        assert names(bob.emoji.search_custom_emoji({'term': tag})) == [second, first]
        assert names(bob.emoji.search_custom_emoji({'term': 'ship', 'prefix_only': True})) == [first]
        assert names(bob.emoji.search_custom_emoji({'term': tag, 'prefix_only': True})) == []
        assert names(bob.emoji.autocomplete_custom_emoji({'name': 'anch'})) == [second]
        # 7.3.2 has no method for POST /emoji/names: the generic client.post.
        assert names(bob.client.post('/emoji/names', options=[second, 'nope', 'smile'])) == [second]

        # Refusals: a taken name, standard emoji names, a bad name, another creator, no image.
        for name in (second, 'smile', 'parrot', 'bad name'):
            refused(400, lambda: bob.emoji.create_custom_emoji(name, image(8, 8)))
        # create_custom_emoji always names the caller as creator: the generic client.post.
        refused(403, lambda: bob.client.post('/emoji', data={
            'emoji': json.dumps({'name': f'mine_{tag}', 'creator_id': c['id']})}, files=image(8, 8)))
        refused(400, lambda: bob.emoji.create_custom_emoji(f'text_{tag}', {'image': ('e.png', b'not an image')}))
        refused(404, lambda: carol.emoji.get_custom_emoji_by_name(f'not_there_{tag}'))

        # metadata.emojis: in create_post's answer, the posted event on another node, a read back.
        post = carol.posts.create_post({'channel_id': town['id'], 'message': f'ship it :{first}: :smile:'})
        assert names(post['metadata']['emojis']) == [first]
        assert post['metadata']['emojis'][0]['id'] == ship['id']
        posted = bob_ws.wait('posted', lambda m: m.get('event') == 'posted' and inner(m, 'post')['id'] == post['id'])
        assert names(inner(posted, 'post')['metadata']['emojis']) == [first]
        page = eventually('the post elsewhere', lambda: bob.posts.get_posts_for_channel(town['id']),
                          lambda p: post['id'] in p['posts'])
        assert names(page['posts'][post['id']]['metadata']['emojis']) == [first]

        carol.reactions.create_reaction({'user_id': c['id'], 'post_id': post['id'], 'emoji_name': second})
        page = eventually('the reaction elsewhere', lambda: bob.posts.get_posts_for_channel(town['id']),
                          lambda p: len(p['posts'][post['id']]['metadata'].get('emojis', [])) == 2)
        assert sorted(names(page['posts'][post['id']]['metadata']['emojis'])) == sorted([first, second])
        assert [r['emoji_name'] for r in page['posts'][post['id']]['metadata']['reactions']] == [second]

        # Only the creator (or an admin) deletes.
        refused(403, lambda: carol.emoji.delete_custom_emoji(ship['id']))
        assert bob.emoji.delete_custom_emoji(ship['id']) == {'status': 'OK'}
        eventually('gone elsewhere', lambda: status_of(lambda: carol.emoji.get_custom_emoji(ship['id'])),
                   lambda s: s == 404)
        refused(404, lambda: carol.emoji.get_custom_emoji_by_name(first))
        refused(404, lambda: carol.emoji.get_custom_emoji_image(ship['id']))
        assert names(carol.emoji.get_emoji_list({'sort': 'name'})) == [second]
    finally:
        carol_ws.close()
        bob_ws.close()
        root_ws.close()


def test_acknowledgements(servers):
    """A root post asking for acknowledgement (``metadata.priority.requested_ack``), acknowledged
    on another node through the generic client (mattermostdriver 7.3.2 has no ack method), heard
    by the author, listed in the post's metadata, and taken back; refusals are Mattermost's."""
    port_a, port_b = ports_of(servers)
    root_of(port_a)
    tag = secrets.token_hex(3)
    alice, a = sign_up(port_a, 'alice', tag)
    bob, b = sign_up(port_b, 'bob', tag)
    team = alice.teams.create_team({'name': f'ack{tag}', 'display_name': 'Acks', 'type': 'O'})
    alice.teams.add_user_to_team(team['id'], {'team_id': team['id'], 'user_id': b['id']})
    town = alice.channels.get_channel_by_name(team['id'], 'town-square')
    alice_ws = connect(alice)
    try:
        asked = alice.posts.create_post({'channel_id': town['id'], 'message': 'sign the policy',
                                         'metadata': {'priority': {'priority': 'urgent', 'requested_ack': True}}})
        assert asked['metadata']['priority'] == {'priority': 'urgent', 'requested_ack': True}
        path = f"/users/{b['id']}/posts/{asked['id']}/ack"
        ack = eventually('ack on the other node', lambda: bob.client.post(path))
        assert (ack['user_id'], ack['post_id']) == (b['id'], asked['id'])
        heard = alice_ws.wait('post_acknowledgement_added',
                              lambda m: m.get('event') == 'post_acknowledgement_added')
        assert json.loads(heard['data']['acknowledgement'])['user_id'] == b['id']
        listed = eventually('ack in metadata', lambda: alice.posts.get_post(asked['id']),
                            lambda p: len(p['metadata'].get('acknowledgements', [])) == 1)
        assert listed['metadata']['acknowledgements'][0]['acknowledged_at'] == ack['acknowledged_at']
        with pytest.raises(NotEnoughPermissions):
            bob.client.post(f"/users/{a['id']}/posts/{asked['id']}/ack")
        with pytest.raises(InvalidOrMissingParameters):
            alice.posts.create_post({'channel_id': town['id'], 'root_id': asked['id'], 'message': 'r',
                                     'metadata': {'priority': {'priority': 'urgent'}}})
        assert bob.client.delete(path)['status'] == 'OK'
        alice_ws.wait('post_acknowledgement_removed',
                      lambda m: m.get('event') == 'post_acknowledgement_removed')
        with pytest.raises(ResourceNotFound):
            bob.client.delete(path)
    finally:
        alice_ws.close()
