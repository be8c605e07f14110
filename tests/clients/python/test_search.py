"""Search with mattermostdriver: ``posts.search_for_team_posts`` (syntax, paging, matches,
privacy), ``users.search_users`` and ``users.autocomplete_users``, on a single node and on a
3-node cluster where the searcher talks to another node than the writer."""
import secrets

from mattermostdriver.exceptions import InvalidOrMissingParameters

from test_flows import PASSWORD, driver, eventually


def messages(found):
    return [found['posts'][i]['message'] for i in found['order']]


def sign_up(port, username):
    d = driver(port, username)
    eventually(f'sign up {username}', lambda: d.users.create_user(
        {'email': f'{username}@example.com', 'username': username, 'password': PASSWORD}))
    me = d.login()
    return d, me


def test_search(servers):
    ports = servers.ports
    tag = secrets.token_hex(3)
    alice, alice_me = sign_up(ports[0], f'alice{tag}')
    bob, bob_me = sign_up(ports[-1], f'bob{tag}')
    team = alice.teams.create_team({'name': f'search-{tag}', 'display_name': 'Search', 'type': 'O'})
    alice.teams.add_user_to_team(team['id'], {'team_id': team['id'], 'user_id': bob_me['id']})
    town = alice.channels.get_channel_by_name(team['id'], 'town-square')
    secret = alice.channels.create_channel(
        {'team_id': team['id'], 'name': f'secret-{tag}', 'display_name': 'Secret', 'type': 'P'})
    alice.posts.create_post({'channel_id': town['id'], 'message': 'Café meeting at noon'})
    quick = alice.posts.create_post({'channel_id': town['id'], 'message': 'quick brown fox'})
    alice.posts.create_post({'channel_id': secret['id'], 'message': 'secret cafe plans'})

    found = eventually('both posts on bob\'s node',
                       lambda: bob.posts.search_for_team_posts(team['id'], {'terms': 'cafe OR fox', 'is_or_search': True}),
                       lambda f: len(f['order']) == 2)
    assert messages(found) == ['quick brown fox', 'Café meeting at noon']
    assert found['matches'][quick['id']] == ['fox']
    phrase = bob.posts.search_for_team_posts(team['id'], {'terms': '"brown fox" -noon'})
    assert messages(phrase) == ['quick brown fox']
    by_author = bob.posts.search_for_team_posts(team['id'], {'terms': f'from:alice{tag} caf*', 'per_page': 1})
    assert messages(by_author) == ['Café meeting at noon'] and by_author['has_next'] is False
    assert bob.posts.search_for_team_posts(team['id'], {'terms': 'plans'})['order'] == []
    mine = eventually('alice\'s private post',
                      lambda: alice.posts.search_for_team_posts(team['id'], {'terms': 'plans'}),
                      lambda f: len(f['order']) == 1)
    assert messages(mine) == ['secret cafe plans']
    try:
        bob.posts.search_for_team_posts(team['id'], {'terms': 'on:2026-99-99'})
        raise AssertionError('an invalid date is refused')
    except InvalidOrMissingParameters:
        pass

    users = bob.users.search_users({'term': f'alice{tag}', 'team_id': team['id']})
    assert [u['username'] for u in users] == [f'alice{tag}']
    assert users[0]['email'] == '', 'another user\'s email stays private'
    auto = eventually('the secret channel on alice\'s node',
                      lambda: alice.users.autocomplete_users(
                          params={'in_team': team['id'], 'in_channel': secret['id'], 'name': ''}),
                      lambda a: len(a['users']) == 1)
    assert [u['username'] for u in auto['users']] == [f'alice{tag}']
    assert [u['username'] for u in auto['out_of_channel']] == [f'bob{tag}']
