// The emoji offered by the reaction picker, by Mattermost's names (reactions store names).
export const EMOJI: Record<string, string> = {
    '+1': '👍', '-1': '👎', smile: '😄', laughing: '😆', joy: '😂', heart: '❤️', tada: '🎉', rocket: '🚀',
    eyes: '👀', fire: '🔥', '100': '💯', white_check_mark: '✅', x: '❌', pray: '🙏', clap: '👏',
    thinking_face: '🤔', wave: '👋', raised_hands: '🙌', ok_hand: '👌', muscle: '💪', star: '⭐',
    sparkles: '✨', bulb: '💡', warning: '⚠️', heavy_plus_sign: '➕', slightly_smiling_face: '🙂',
    wink: '😉', sweat_smile: '😅', cry: '😢', sob: '😭', scream: '😱', sunglasses: '😎',
    heart_eyes: '😍', upside_down_face: '🙃', facepalm: '🤦', shrug: '🤷', coffee: '☕', beers: '🍻',
    pizza: '🍕', bug: '🐛', memo: '📝', calendar: '📆', hourglass: '⌛', lock: '🔒', link: '🔗',
    point_up: '☝️', question: '❓', exclamation: '❗',
};

export function emojiChar(name: string): string {
    return EMOJI[name] ?? `:${name}:`;
}
